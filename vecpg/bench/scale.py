"""Scale curve: how load time, HNSW build time, size on disk and QPS at a fixed recall grow
with the number of rows, on generated clustered data (``vecpg bench --scale``).

The data: ``clusters`` Gaussian centres; each point is its centre plus noise that lives
mostly in a random low-dimensional subspace (plus a little full-dimensional noise), which
gives the clustered, low intrinsic dimension structure of real embeddings — pure Gaussian
noise in 128 dimensions would make every ANN index look bad. Queries are drawn from the
same distribution; ground truth is exact (numpy), metric L2.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql

from ..datasets import exact_knn, recall_at_k
from ..ddl import BUILD_MEM_MAX_MB, hnsw_graph_mb
from ..errors import InvalidArgument
from ..progress import Progress
from ..schema import CollectionSchema, DataType
from .report import Report
from .timing import time_sides

DEFAULT_SIZES = (100_000, 300_000, 1_000_000)
VECTOR_TYPES = {"float": (DataType.FLOAT_VECTOR, np.float32),
                "float16": (DataType.FLOAT16_VECTOR, np.float16)}
EF_SWEEP = (10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640)


def clustered_data(n: int, dim: int, *, seed: int = 0, clusters: int = 100,
                   latent: int = 16) -> np.ndarray:
    """``n`` x ``dim`` float32 points (see the module doc); deterministic for a seed."""
    if n < 1 or dim < 2:
        raise InvalidArgument(f"need n >= 1 and dim >= 2, got n={n}, dim={dim}")
    rng = np.random.default_rng(seed)
    shape_rng = np.random.default_rng(12345)  # the same centres and subspace for every n
    latent = min(latent, dim)
    centres = shape_rng.normal(size=(clusters, dim)).astype(np.float32)
    basis = (shape_rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        label = rng.integers(0, clusters, size=hi - lo)
        z = rng.normal(size=(hi - lo, latent)).astype(np.float32)
        noise = rng.normal(scale=0.05, size=(hi - lo, dim)).astype(np.float32)
        out[lo:hi] = centres[label] + 0.6 * (z @ basis) + noise
    return out


def collection_name(n: int, dim: int, vector_type: str = "float32") -> str:
    """The collection a scale run of ``n`` rows of ``dim`` dims leaves (with ``--keep``):
    named by its shape, so runs of other dims or types do not drop it."""
    return f"bench_scale_{n}_{dim}d_{vector_type}"


def run_scale(client: Any, report: Report, *, sizes: Sequence[int] = DEFAULT_SIZES,
              dim: int = 128, queries: int = 200, k: int = 10, target_recall: float = 0.95,
              m: int = 16, ef_construction: int = 64, exact_queries: int = 20,
              keep: bool = False, vector_type: str = "float") -> list[dict[str, Any]]:
    """For each size: load, build HNSW, sweep ef until ``target_recall``, time an exact
    scan; one ``scale`` record per size (also added to ``report``). ``vector_type``
    "float16" stores ``halfvec`` (half the table and index)."""
    if vector_type not in VECTOR_TYPES:
        raise InvalidArgument(f"vector type must be one of {sorted(VECTOR_TYPES)}, "
                              f"got {vector_type!r}")
    dtype, np_type = VECTOR_TYPES[vector_type]
    if not 0 < target_recall <= 1:
        raise InvalidArgument(f"target recall must be in (0, 1], got {target_recall}")
    if any(n < k for n in sizes):
        raise InvalidArgument(f"every size must be at least k={k}, got {list(sizes)}")
    out = []
    qs = clustered_data(queries, dim, seed=987654321)
    for n in sizes:
        coll = collection_name(n, dim, vector_type)
        data = clustered_data(n, dim, seed=n)
        if np_type is not np.float32:  # ground truth on the stored (rounded) vectors
            data = data.astype(np_type).astype(np.float32)
        truth, _ = exact_knn(data, qs, k, "euclidean")
        client.drop_collection(coll)
        schema = CollectionSchema(enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", dtype, dim=dim)
        client.create_collection(coll, schema=schema, metric_type="L2")
        try:
            ids = np.arange(n, dtype=np.int64)
            t0 = time.perf_counter()
            with Progress(f"load {n:,}", total=n) as bar:
                for lo in range(0, n, 20_000):
                    hi = min(n, lo + 20_000)
                    client.insert(coll, {"id": ids[lo:hi], "vector": data[lo:hi].astype(np_type)})
                    bar.update(hi - lo)
            load_s = time.perf_counter() - t0
            del data
            t0 = time.perf_counter()
            with Progress(f"build {n:,}", total=n, unit="tuples") as bar:
                client.create_index(coll, field_name="vector", index_type="HNSW",
                                    metric_type="L2",
                                    params={"M": m, "efConstruction": ef_construction},
                                    progress=lambda p: bar.set(p.get("tuples_done") or 0, None,
                                                               str(p.get("phase") or "")))
            build_s = time.perf_counter() - t0
            d = client.describe_index(coll, "vector")
            with client.connection() as conn:
                name = sql.Identifier(client.schema, coll).as_string(conn)
                table_bytes = conn.execute("SELECT pg_table_size(%s::regclass)",
                                           (name,)).fetchone()[0]
                settings = {name: conn.execute("SELECT current_setting(%s)", (name,)
                                               ).fetchone()[0]
                            for name in ("shared_buffers", "max_parallel_maintenance_workers")}

            def side(params: dict[str, Any], coll: str = coll) -> Any:
                def run(q: np.ndarray) -> list[int]:
                    return [h.id for h in client.search(coll, q.reshape(1, -1), limit=k,
                                                        search_params={"params": params})[0]]
                return run

            sweep = []
            hit = None
            for ef in EF_SWEEP:
                timed = time_sides(qs, [side({"ef": ef})], warmup=5)[0]
                point = {"ef": ef, "recall": round(recall_at_k(timed.found, truth, k), 4),
                         **timed.summary()}
                sweep.append(point)
                if point["recall"] >= target_recall:
                    hit = point
                    break
            ex = time_sides(qs[:exact_queries], [side({"exact": True})], warmup=1)[0]
            rec = {"kind": "scale", "n": n, "dim": dim, "k": k, "queries": len(qs),
                   "vector_type": vector_type, "settings": settings,
                   "build_mem_mb": min(hnsw_graph_mb(n, dim, dtype, m), BUILD_MEM_MAX_MB),
                   "load_s": round(load_s, 3), "rows_per_s": round(n / load_s),
                   "build_s": round(build_s, 3), "index_bytes": d.get("total_bytes"),
                   "table_bytes": int(table_bytes), "params": {"M": m,
                                                               "efConstruction": ef_construction},
                   "target_recall": target_recall, "ef_at_target": hit and hit["ef"],
                   "qps_at_target": hit and hit["qps"], "recall_at_target": hit and hit["recall"],
                   "p50_ms_at_target": hit and hit["p50_ms"],
                   "exact_qps": ex.qps, "exact_queries": len(ex.seconds),
                   "exact_recall": round(recall_at_k(ex.found, truth[:exact_queries], k), 4),
                   "sweep": sweep}
            report.add(rec)
            out.append(rec)
        finally:
            if not keep:
                client.drop_collection(coll)
    return out


def scale_table(records: Sequence[dict[str, Any]]) -> str:
    """The ``scale`` records as a markdown table."""
    from .report import markdown_table

    rows = []
    records = sorted((r for r in records if r.get("kind") == "scale"), key=lambda r: r["n"])
    for r in records:
        rows.append([f"{r['n']:,}", f"{r['load_s']:.1f}", f"{r['rows_per_s']:,}",
                     f"{r['build_s']:.1f}", f"{r['index_bytes'] / 1e6:.1f}",
                     f"{r['table_bytes'] / 1e6:.1f}", str(r["ef_at_target"] or "not reached"),
                     f"{r['recall_at_target']:.3f}" if r["recall_at_target"] else "",
                     f"{r['qps_at_target']:,.0f}" if r["qps_at_target"] else "",
                     f"{r['p50_ms_at_target']:.2f}" if r["p50_ms_at_target"] else "",
                     f"{r['exact_qps']:,.1f}"])
    target = records[0]["target_recall"] if records else ""
    return markdown_table(["N", "load s", "rows/s", "HNSW build s", "index MB", "table MB",
                           f"ef for recall>={target}", "recall", "QPS", "p50 ms",
                           "exact QPS"], rows)
