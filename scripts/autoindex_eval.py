"""Automatic scalar indexes (vecpg.autoindex) on the dev set: search QPS of a selective filter
with no scalar index, with the index vecpg builds by itself after a warm-up, and with the
btree a user makes (STL_SORT), measured in one run.

    python scripts/autoindex_eval.py [--queries 200] [--rounds 3] [--data-dir DIR]

Loads the dev dataset (55k x 384, COSINE) with ``lexfile`` as an INT64 field and as a
dynamic key ``jlex``, builds HNSW, then for ``lexfile == 19`` (0.52%) and ``jlex == 19``:

1. ``none``: ``vecpg.auto_scalar_index`` off, no scalar index;
2. warm-up: the property on, searches one query a call until the automatic index is in
   the catalog (counted: searches and seconds);
3. ``auto`` and ``user btree`` take turns (the automatic index dropped and the user's made,
   and back, each round), 20 queries a block, so both share the machine's noise.

Prints QPS, recall@10 and the auto / user ratio (issue 17's done-when: >= 0.8 after at
most a few hundred warm-up searches).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import vecpg
from vecpg import DataType, autoindex
from vecpg.autoindex import PROPERTY
from vecpg.datasets import load_hdf5, recall_at_k
from vecpg.server import embedded_dsn

DEFAULT = Path(__file__).resolve().parents[2] / "shared/datasets/wordnet-minilm-384-angular.hdf5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=str(DEFAULT))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", default=None, help="embedded server data dir (kept)")
    ap.add_argument("--dsn", default=None)
    args = ap.parse_args()
    ds = load_hdf5(args.dataset)
    queries = ds.test[:args.queries]
    truth = ds.filters["lexfile_19"].neighbors[:args.queries, :10]
    dsn = args.dsn or embedded_dsn(args.data_dir or tempfile.mkdtemp(prefix="vecpg-ai-"),
                                   temporary=args.data_dir is None)
    with vecpg.connect(dsn, schema="autoindex_eval") as c:
        _load(c, ds)
        for expr in ("lexfile == 19", "jlex == 19"):
            _measure(c, expr, queries, truth, args.rounds)


def _load(c: vecpg.Client, ds: Any) -> None:
    if c.has_collection("wn"):
        for ix in c.list_indexes("wn"):
            if ix != "embedding":
                c.drop_index("wn", ix)
        return
    schema = c.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("lexfile", DataType.INT64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=ds.dim)
    c.create_collection("wn", schema=schema, metric_type="COSINE")
    lex = ds.attrs["train_lexfile"].astype(np.int64)
    for i in range(0, len(ds.train), 5000):
        c.insert("wn", [{"id": j, "lexfile": int(lex[j]), "jlex": int(lex[j]),
                         "embedding": ds.train[j]} for j in range(i, min(i + 5000, len(lex)))])
    t0 = time.perf_counter()
    c.create_index("wn", field_name="embedding", index_type="HNSW",
                   params={"M": 16, "efConstruction": 64})
    print(f"loaded; HNSW built and calibrated in {time.perf_counter() - t0:.1f} s")


def _block(c: vecpg.Client, expr: str, qs: np.ndarray, ids: list[list[int]]) -> float:
    t0 = time.perf_counter()
    for q in qs:
        ids.append([h.id for h in c.search("wn", [q], limit=10, filter=expr)[0]])
    return time.perf_counter() - t0


def _measure(c: vecpg.Client, expr: str, queries: np.ndarray, truth: np.ndarray,
             rounds: int) -> None:
    nq = len(queries)
    c.alter_collection_properties("wn", {PROPERTY: False})
    ids: list[list[int]] = []
    spent = _block(c, expr, queries[:10], [])  # warm caches, untimed
    spent = _block(c, expr, queries, ids)
    print(f"\n{expr}\n  none        QPS {nq / spent:8.1f}  recall {recall_at_k(ids, truth, 10):.3f}"
          f"  ({c.explain('wn', limit=10, filter=expr)['strategy']})")
    c.alter_collection_properties("wn", {PROPERTY: True})
    t0, n = time.perf_counter(), 0
    auto = None
    while auto is None and n < 2000:
        c.search("wn", [queries[n % nq]], limit=10, filter=expr)
        n += 1
        if n % 10 == 0:
            auto = next((x for x in c.list_indexes("wn") if x.startswith("auto_")), None)
    warm = time.perf_counter() - t0
    if auto is None:
        print(f"  no automatic index after {n} searches")
        return
    desc = c.describe_index("wn", auto)
    print(f"  warm-up: {n} searches, {warm:.1f} s, then index {auto} "
          f"({desc['index_type']}, {desc['params']})")
    c.alter_collection_properties("wn", {PROPERTY: False})  # no rebuild while user's is down
    spent_by = {"auto": 0.0, "user": 0.0}
    found: dict[str, list[list[int]]] = {"auto": [], "user": []}
    json_path = "json_path" in desc["params"]
    for r in range(rounds):
        for turn in (("auto", "user") if r % 2 == 0 else ("user", "auto")):
            if turn == "user" and json_path:
                continue  # vecpg's create_index takes no JSON path: no user-made twin
            _swap(c, expr, auto, to=turn)
            _block(c, expr, queries[:10], [])
            for b in range(0, nq, 20):
                spent_by[turn] += _block(c, expr, queries[b:b + 20],
                                         found[turn] if r == 0 else [])
    _swap(c, expr, auto, to="auto")
    for name in ("auto", "user"):
        if spent_by[name]:
            print(f"  {name:11s} QPS {nq * rounds / spent_by[name]:8.1f}  recall "
                  f"{recall_at_k(found[name], truth, 10):.3f}")
    if spent_by["user"]:
        print(f"  auto / user btree: {spent_by['user'] / spent_by['auto']:.2f}")
    c.drop_index("wn", auto)


def _swap(c: vecpg.Client, expr: str, auto: str, *, to: str) -> None:
    """Leave the automatic index (``to="auto"``) or a user-made STL_SORT in place."""
    have = set(c.list_indexes("wn"))
    if to == "user":
        if "user_btree" not in have:
            c.create_index("wn", field_name="lexfile", index_type="STL_SORT",
                           index_name="user_btree")
        if auto in have:
            c.drop_index("wn", auto)
    else:
        if "user_btree" in have:
            c.drop_index("wn", "user_btree")
        if auto not in have:  # made again as the background build makes it
            autoindex.build(c.dsn, c._info("wn", fresh=True), expr, None)
            c._after_auto_index("wn")
    c.explain("wn", limit=10, filter=expr)  # plans made afresh


if __name__ == "__main__":
    main()
