"""BM25 and hybrid search QPS on the 55,000 WordNet glosses: vecpg next to rank_bm25 (and
bm25s when installed) scoring the same tokens, in alternating rounds.

    python scripts/bench_fulltext.py                      # 200 queries a set, 3 rounds
    python scripts/bench_fulltext.py --queries 50 --rounds 2 --limit 10000

The documents are the dev dataset's ``train`` glosses (``../shared/datasets/...``), stored by
``examples/textsearch`` (english analyzer, BM25 k1 = 1.2, b = 0.75, HNSW on the MiniLM
vectors). The references get exactly the terms Postgres produced: each document's lexemes
repeated as often as they occur (the tsvector's positions) and each query's
``to_tsvector('english', q)``; rank_bm25 with Milvus' IDF ``ln(1 + (N - df + .5)/(df + .5))``
(so its scores equal vecpg's), bm25s with ``method="lucene"`` (the same IDF; its scores are
Milvus' divided by k1 + 1, the same ranking).

Query sets: ``keywords`` (4 definition words of a train synset, examples/textsearch's
queries) and ``glosses`` (the dataset's ``test`` texts, whole "lemma: gloss" strings, with
their stored vectors). Hybrid = dense top 50 + BM25 top 50 fused by RRF (k = 60), top 10:
vecpg's ``hybrid_search`` (HNSW as planned) against the reference's BM25 plus an exact
numpy dense scan. Every search is one query per call from one client; each round runs
every system on the same queries, in an order that rotates between rounds. Printed: QPS
per round, the median, vecpg's ratio to each reference, and how often the top 10 agree.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the examples package

import vecpg  # noqa: E402
from examples.textsearch import store  # noqa: E402
from examples.textsearch.corpus import DEV_DATASET, load_synsets  # noqa: E402
from examples.textsearch.queries import make_queries  # noqa: E402
from vecpg.datasets import load_hdf5  # noqa: E402
from vecpg.progress import Progress  # noqa: E402

K, DEPTH = 10, store.HYBRID_DEPTH
K1, B = store.BM25_PARAMS["bm25_k1"], store.BM25_PARAMS["bm25_b"]
Hits = list[tuple[int, float]]


def _top(scores: np.ndarray, k: int, positive: bool = False) -> Hits:
    """The ``k`` best (index, score), best first (only scores > 0 when ``positive``)."""
    idx = np.flatnonzero(scores > 0) if positive else np.arange(len(scores))
    if len(idx) > k:
        idx = idx[np.argpartition(-scores[idx], k - 1)[:k]]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(int(i), float(scores[i])) for i in idx]


def _rrf(lists: Sequence[Hits], k: int) -> Hits:
    fused: dict[int, float] = {}
    for hits in lists:
        for rank, (key, _) in enumerate(hits, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (store.RRF_K + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])[:k]


def postgres_terms(client: vecpg.Client, name: str, queries: Sequence[str]
                   ) -> tuple[list[list[str]], list[list[str]]]:
    """Each document's terms (row order = id) and each query's, as Postgres analyzed them."""
    docs: dict[int, list[str]] = {}
    with client.connection() as conn:
        for pk, lexeme, n in conn.execute(sql.SQL(
                "SELECT id, u.lexeme, cardinality(u.positions) FROM {} t, unnest(t._tsv_text) u")
                .format(sql.Identifier(client.schema, name))):
            docs.setdefault(pk, []).extend([lexeme] * n)
        qterms = []
        for q in queries:
            rows = conn.execute("SELECT u.lexeme, cardinality(u.positions) FROM "
                                "unnest(to_tsvector('english', %s)) u", (q,)).fetchall()
            qterms.append([t for t, n in rows for _ in range(n)])
    n_docs = client.count(name)
    return [docs.get(i, []) for i in range(n_docs)], qterms


class RankBM25:
    """rank_bm25's BM25Okapi with Milvus' IDF (rank_bm25's own has no ``1 +`` and a floor)."""

    label = "rank_bm25"

    def __init__(self, docs: list[list[str]]) -> None:
        from rank_bm25 import BM25Okapi

        self.bm = BM25Okapi(docs, k1=K1, b=B)
        n, df = len(docs), Counter(t for d in docs for t in set(d))
        self.bm.idf = {t: math.log(1.0 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def bm25(self, terms: list[str], k: int) -> Hits:
        return _top(np.asarray(self.bm.get_scores(terms)), k, positive=True)


class Bm25s:
    """bm25s' Lucene variant: Milvus' IDF, scores divided by k1 + 1."""

    label = "bm25s"

    def __init__(self, docs: list[list[str]]) -> None:
        import bm25s

        self.bm = bm25s.BM25(method="lucene", k1=K1, b=B)
        self.bm.index(docs, show_progress=False)

    def bm25(self, terms: list[str], k: int) -> Hits:
        scores = np.asarray(self.bm.get_scores(terms), dtype=np.float64) * (K1 + 1)
        return _top(scores, k, positive=True)


def _agree(a: Sequence[Hits], b: Sequence[Hits]) -> float:
    """Share of queries whose top-K id sets are equal, ties at the K-th score aside."""
    same = 0
    for x, y in zip(a, b, strict=True):
        sx, sy = {i for i, _ in x[:K]}, {i for i, _ in y[:K]}
        cut = min([s for _, s in x[:K]] + [s for _, s in y[:K]], default=0.0)
        strict_x = {i for i, s in x[:K] if s > cut * (1 + 1e-6)}
        strict_y = {i for i, s in y[:K] if s > cut * (1 + 1e-6)}
        same += sx == sy or (strict_x <= sy and strict_y <= sx)
    return same / max(len(a), 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--dataset", type=Path, default=DEV_DATASET)
    ap.add_argument("--limit", type=int, help="only the first LIMIT glosses")
    ap.add_argument("--queries", type=int, default=200, help="queries per set (default 200)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--collection", default="bench_fulltext")
    ap.add_argument("--plot", type=Path, default=ROOT / "scripts" / "out" / "bench_fulltext.png")
    args = ap.parse_args(argv)

    print(f"loading {args.dataset} ...", file=sys.stderr)
    corpus = load_synsets(limit=args.limit, path=args.dataset)
    test = load_hdf5(args.dataset, limit_test=args.queries)
    sets = {"keywords": [q.text for q in make_queries(corpus.synsets, args.queries)["keywords"]],
            "glosses": [str(t) for t in test.attrs["test_text"][:args.queries]]}
    qvec = test.test[:args.queries].astype(np.float32)
    client = vecpg.connect(args.dsn)
    t0 = time.perf_counter()
    store.create(client, args.collection, corpus)   # draws its own progress bar
    print(f"{len(corpus.synsets)} glosses stored (BM25 + HNSW) in {time.perf_counter() - t0:.1f} s")
    docs, _ = postgres_terms(client, args.collection, [])
    qterms = {s: postgres_terms(client, args.collection, qs)[1] for s, qs in sets.items()}
    refs: list[Any] = []
    for cls in (RankBM25, Bm25s):
        try:
            t0 = time.perf_counter()
            refs.append(cls(docs))
            print(f"{cls.label} indexed the same terms in {time.perf_counter() - t0:.1f} s")
        except ImportError:
            print(f"{cls.label} not installed: left out")
    emb = corpus.embeddings

    def vecpg_run(mode: str, s: str) -> Callable[[int], Hits]:
        texts = sets[s]
        return lambda i: store.retrieve(client, args.collection, mode, [texts[i]],
                                        qvec[i:i + 1], k=K)[0]

    def ref_bm25(ref: Any, s: str) -> Callable[[int], Hits]:
        return lambda i: ref.bm25(qterms[s][i], K)

    def ref_hybrid(ref: Any) -> Callable[[int], Hits]:
        return lambda i: _rrf([_top(emb @ qvec[i], DEPTH), ref.bm25(qterms["glosses"][i], DEPTH)],
                              K)

    workloads: dict[str, dict[str, Callable[[int], Hits]]] = {
        "bm25 keywords": {"vecpg": vecpg_run("bm25", "keywords"),
                          **{r.label: ref_bm25(r, "keywords") for r in refs}},
        "bm25 glosses": {"vecpg": vecpg_run("bm25", "glosses"),
                         **{r.label: ref_bm25(r, "glosses") for r in refs}},
        "hybrid glosses": {"vecpg": vecpg_run("hybrid", "glosses"),
                           **{r.label + "+numpy": ref_hybrid(r) for r in refs}},
    }
    n = len(qvec)
    qps: dict[str, dict[str, list[float]]] = {w: {s: [] for s in f} for w, f in workloads.items()}
    results: dict[str, dict[str, list[Hits]]] = {w: {} for w in workloads}
    total = args.rounds * sum(len(f) for f in workloads.values()) * n
    with Progress("search", total=total, unit="queries") as bar:
        for r in range(args.rounds):
            for w, systems in workloads.items():
                names = list(systems)
                names = names[r % len(names):] + names[:r % len(names)]  # rotate the order
                for s in names:
                    t0 = time.perf_counter()
                    got = [systems[s](i) for i in range(n)]
                    qps[w][s].append(n / (time.perf_counter() - t0))
                    results[w].setdefault(s, got)
                    bar.update(n)

    print(f"\n{n} queries a set, {args.rounds} rounds, one query per call; QPS per round "
          "(median), vecpg's QPS ratio to each reference (median of the rounds' ratios), "
          "top-10 agreement with vecpg (hybrid: vecpg's dense list comes through HNSW, "
          "the references' from an exact numpy scan)")
    for w, per in qps.items():
        print(f"\n  {w}")
        med = {s: statistics.median(v) for s, v in per.items()}
        for s, v in per.items():
            line = f"  {s:<16}{' '.join(f'{x:8.1f}' for x in v)}   median {med[s]:8.1f}"
            if s != "vecpg":  # per-round ratios: a round's load slows both sides alike
                ratio = statistics.median(a / b for a, b in zip(per["vecpg"], v, strict=True))
                line += (f"   vecpg x{ratio:.2f}"
                         f"   same top 10: {_agree(results[w]['vecpg'], results[w][s]):.1%}")
            print(line)
    client.close()
    _plot(qps, args.plot)


def _plot(qps: dict[str, dict[str, list[float]]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(qps), figsize=(4 * len(qps), 3.6))
    for ax, (w, per) in zip(np.atleast_1d(axes), qps.items(), strict=True):
        names = list(per)
        ax.bar(names, [statistics.median(per[s]) for s in names],
               color=["#3b6ea8"] + ["#b0b0b0"] * (len(names) - 1))
        ax.set_yscale("log")
        ax.set_title(w)
        ax.set_ylabel("queries/s (median of rounds)")
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle("vecpg vs reference BM25 libraries, 55k WordNet glosses, one query per call")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
