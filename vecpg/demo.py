"""``vecpg demo``: semantic search over the packaged WordNet sample, with measured recall.

The CLI's ``demo`` command runs :func:`run_demo`; a test runs it too, against the test server.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from .datasets import load_demo_sample, recall_at_k
from .progress import Progress
from .schema import CollectionSchema, DataType

POS_NAMES = ("noun", "verb", "adjective", "adjective satellite", "adverb")
DEMO_COLLECTION = "wordnet_demo"


def run_demo(client: Any, *, ef: int = 64, show: int = 3, out: Any = None) -> dict[str, float]:
    """Load the sample, index it, run searches and return the measured recalls.

    Recall is HNSW (at ``ef``) against exact search, per filter, plus exact search against
    the packaged numpy ground truth, so the demo checks the server as well as showing it::

        with vecpg.connect() as client:
            recalls = run_demo(client, out=io.StringIO())   # {"all rows": 0.99, ...}
    """
    out = out or sys.stdout
    ds = load_demo_sample()
    texts = ds.attrs["train_text"]
    lexnames = [str(x) for x in ds.attrs["lexnames"]]
    n = len(ds.train)
    print(f"WordNet 3.0 glosses embedded with all-MiniLM-L6-v2: {n} rows x {ds.dim} dims, "
          f"{len(ds.test)} queries (see vecpg/data/README.md)", file=out)

    client.drop_collection(DEMO_COLLECTION)
    schema = CollectionSchema(description="WordNet synsets: 'lemma: gloss'")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=max(len(t) for t in texts) + 16)
    schema.add_field("pos", DataType.VARCHAR, max_length=32)
    schema.add_field("lexname", DataType.VARCHAR, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=ds.dim)
    client.create_collection(DEMO_COLLECTION, schema=schema, metric_type="COSINE")

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
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    with Progress("build HNSW", total=n, unit="tuples") as bar:
        client.create_index(DEMO_COLLECTION, field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64},
                            progress=lambda p: bar.set(p.get("tuples_done") or 0, None,
                                                       str(p.get("phase") or "")))
        bar.set(n)
    build_s = time.perf_counter() - t0
    print(f"loaded {n} rows in {load_s:.2f}s ({n / load_s:,.0f} rows/s); "
          f"HNSW built in {build_s:.2f}s", file=out)

    hnsw = {"params": {"ef": ef}}
    exact = {"params": {"exact": True}}
    filters = {"": "all rows", 'pos == "noun"': "nouns only",
               'lexname == "noun.state"': "noun.state only"}
    queries = ds.test
    for i in range(min(show, len(queries))):
        print(f"\nquery: {ds.attrs['test_text'][i]}", file=out)
        for expr, label in filters.items():
            hits = client.search(DEMO_COLLECTION, [queries[i]], limit=3, filter=expr,
                                 output_fields=["text"], search_params=hnsw)[0]
            print(f"  {label}:", file=out)
            for h in hits:
                print(f"    {h.distance:.3f}  {h.entity['text'][:100]}", file=out)

    recalls: dict[str, float] = {}
    print(f"\nrecall@10 of HNSW (ef={ef}) against exact search, {len(queries)} queries:", file=out)
    for expr, label in filters.items():
        t0 = time.perf_counter()
        approx = client.search(DEMO_COLLECTION, queries, limit=10, filter=expr, search_params=hnsw)
        t_approx = time.perf_counter() - t0
        t0 = time.perf_counter()
        truth = client.search(DEMO_COLLECTION, queries, limit=10, filter=expr, search_params=exact)
        t_exact = time.perf_counter() - t0
        r = recall_at_k([[h.id for h in q] for q in approx], [[h.id for h in q] for q in truth], 10)
        recalls[label] = r
        print(f"  {label:<16} recall {r:.3f}   HNSW {len(queries) / t_approx:7.0f} QPS   "
              f"exact {len(queries) / t_exact:7.0f} QPS", file=out)
    # The packaged ground truth was computed in numpy; exact search must agree with it.
    truth_np = recall_at_k([[h.id for h in q] for q in client.search(
        DEMO_COLLECTION, queries, limit=10, search_params=exact)], ds.neighbors[:, :10], 10)
    recalls["exact vs numpy"] = truth_np
    print(f"  exact search vs numpy ground truth: {truth_np:.3f}", file=out)
    return recalls
