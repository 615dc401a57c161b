"""``vecpg demo``: semantic search over the packaged WordNet sample, with measured recall.

The CLI's ``demo`` command runs :func:`run_demo`; a test runs it too, against the test server.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from .datasets import AnnDataset, load_demo_sample, recall_at_k
from .progress import Progress
from .schema import CollectionSchema, DataType

POS_NAMES = ("noun", "verb", "adjective", "adjective satellite", "adverb")
DEMO_COLLECTION = "wordnet_demo"


#: Filter expression -> label of the searches the demo shows and scores ("" = no filter).
_FILTERS = {"": "all rows", 'pos == "noun"': "nouns only",
            'lexname == "noun.state"': "noun.state only"}
_EXACT = {"params": {"exact": True}}


def _create_collection(client: Any, ds: AnnDataset) -> None:
    """(Re)create the demo collection, so a second run starts from an empty one."""
    texts = ds.attrs["train_text"]
    client.drop_collection(DEMO_COLLECTION)
    schema = CollectionSchema(description="WordNet synsets: 'lemma: gloss'")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=max(len(t) for t in texts) + 16)
    schema.add_field("pos", DataType.VARCHAR, max_length=32)
    schema.add_field("lexname", DataType.VARCHAR, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=ds.dim)
    client.create_collection(DEMO_COLLECTION, schema=schema, metric_type="COSINE")


def _insert_rows(client: Any, ds: AnnDataset) -> float:
    """Insert the sample in batches of 1000 with a progress bar; returns the seconds taken.

    The numeric codes of the sample become names (pos, lexname) so that the filters the
    demo shows read as they would in an application.
    """
    texts = ds.attrs["train_text"]
    lexnames = [str(x) for x in ds.attrs["lexnames"]]
    n = len(ds.train)
    pos = [POS_NAMES[int(p)] for p in ds.attrs["train_pos"]]
    lex = [lexnames[int(x)] for x in ds.attrs["train_lexfile"]]
    t0 = time.perf_counter()
    with Progress("insert", total=n) as bar:
        for lo in range(0, n, 1000):
            hi = min(n, lo + 1000)
            client.insert(DEMO_COLLECTION, {
                "id": np.arange(lo, hi), "text": list(texts[lo:hi]), "pos": pos[lo:hi],
                "lexname": lex[lo:hi], "embedding": ds.train[lo:hi]})
            bar.update(hi - lo)
    return time.perf_counter() - t0


def _build_index(client: Any, n: int) -> float:
    """Build the HNSW index with a progress bar fed by the server; returns the seconds taken."""
    t0 = time.perf_counter()
    with Progress("build HNSW", total=n, unit="tuples") as bar:
        client.create_index(DEMO_COLLECTION, field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64},
                            progress=lambda p: bar.set(p.get("tuples_done") or 0, None,
                                                       str(p.get("phase") or "")))
        bar.set(n)
    return time.perf_counter() - t0


def _show_examples(client: Any, ds: AnnDataset, hnsw: dict[str, Any], show: int,
                   out: Any) -> None:
    """Print the top 3 hits of the first ``show`` queries under each filter."""
    queries = ds.test
    for i in range(min(show, len(queries))):
        print(f"\nquery: {ds.attrs['test_text'][i]}", file=out)
        for expr, label in _FILTERS.items():
            hits = client.search(DEMO_COLLECTION, [queries[i]], limit=3, filter=expr,
                                 output_fields=["text"], search_params=hnsw)[0]
            print(f"  {label}:", file=out)
            for h in hits:
                print(f"    {h.distance:.3f}  {h.entity['text'][:100]}", file=out)


def _measure_recalls(client: Any, queries: np.ndarray, hnsw: dict[str, Any], ef: int,
                     out: Any) -> dict[str, float]:
    """Recall@10 of HNSW against exact search per filter, printed with the QPS of each."""
    recalls: dict[str, float] = {}
    print(f"\nrecall@10 of HNSW (ef={ef}) against exact search, {len(queries)} queries:", file=out)
    for expr, label in _FILTERS.items():
        t0 = time.perf_counter()
        approx = client.search(DEMO_COLLECTION, queries, limit=10, filter=expr, search_params=hnsw)
        t_approx = time.perf_counter() - t0
        t0 = time.perf_counter()
        truth = client.search(DEMO_COLLECTION, queries, limit=10, filter=expr, search_params=_EXACT)
        t_exact = time.perf_counter() - t0
        r = recall_at_k([[h.id for h in q] for q in approx], [[h.id for h in q] for q in truth], 10)
        recalls[label] = r
        print(f"  {label:<16} recall {r:.3f}   HNSW {len(queries) / t_approx:7.0f} QPS   "
              f"exact {len(queries) / t_exact:7.0f} QPS", file=out)
    return recalls


def _exact_vs_numpy(client: Any, ds: AnnDataset, out: Any) -> float:
    """Recall@10 of the server's exact search against the packaged numpy ground truth.

    The packaged ground truth was computed in numpy; exact search must agree with it, so
    anything short of 1.0 points at the server, not at HNSW.
    """
    truth_np = recall_at_k([[h.id for h in q] for q in client.search(
        DEMO_COLLECTION, ds.test, limit=10, search_params=_EXACT)], ds.neighbors[:, :10], 10)
    print(f"  exact search vs numpy ground truth: {truth_np:.3f}", file=out)
    return truth_np


def run_demo(client: Any, *, ef: int = 64, show: int = 3, out: Any = None) -> dict[str, float]:
    """Load the sample, index it, run searches and return the measured recalls.

    Recall is HNSW (at ``ef``) against exact search, per filter, plus exact search against
    the packaged numpy ground truth, so the demo checks the server as well as showing it::

        with vecpg.connect() as client:
            recalls = run_demo(client, out=io.StringIO())   # {"all rows": 0.99, ...}
    """
    out = out or sys.stdout
    ds = load_demo_sample()
    n = len(ds.train)
    print(f"WordNet 3.0 glosses embedded with all-MiniLM-L6-v2: {n} rows x {ds.dim} dims, "
          f"{len(ds.test)} queries (see vecpg/data/README.md)", file=out)

    _create_collection(client, ds)
    load_s = _insert_rows(client, ds)
    build_s = _build_index(client, n)
    print(f"loaded {n} rows in {load_s:.2f}s ({n / load_s:,.0f} rows/s); "
          f"HNSW built in {build_s:.2f}s", file=out)

    # each filter's share of the rows: a selective one is where the planner changes strategy
    print("filters: " + ", ".join(
        f"{label} {client.count(DEMO_COLLECTION, filter=expr):,} rows"
        for expr, label in _FILTERS.items()), file=out)
    hnsw = {"params": {"ef": ef}}
    _show_examples(client, ds, hnsw, show, out)
    recalls = _measure_recalls(client, ds.test, hnsw, ef, out)
    recalls["exact vs numpy"] = _exact_vs_numpy(client, ds, out)
    print(f"\nthe collection stays: table {client.schema}.{DEMO_COLLECTION} "
          f"({client.server_info()['dsn']}); client.drop_collection({DEMO_COLLECTION!r}) "
          "removes it", file=out)
    return recalls
