"""Concurrent clients (``vecpg bench DATASET --clients 1,2,4,8,16``): throughput, p50/p99
latency and memory per client process, for HNSW and each companion index.

For each index a single-client sweep first picks the cheapest setting that reaches the
target recall; then N clients search with it for a fixed time, as N threads sharing one
:class:`~vecpg.client.Client` (its connection pool) and as N processes with a client each
(``multiprocessing`` spawn: nothing inherited). QPS is all queries over the wall time of the
timed window, latency percentiles are over every query of every client. Each process
reports its RSS and PSS (proportional set size: shared pages divided among the processes
that map them), so companion codes memory-mapped once per machine show up as a PSS that
falls with N while RSS stays flat; ``shared=off`` rows repeat the process runs with
``VECPG_CACHE_DIR=off`` (a private copy of the codes in every process).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets import AnnDataset, recall_at_k
from ..errors import InvalidArgument
from ..progress import Progress
from .report import Report, markdown_table

# settings tried (cheapest first) until one reaches the target recall with one client
SWEEPS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "hnsw": ("HNSW", [{"ef": e} for e in (20, 40, 60, 80, 120, 160, 240, 320)]),
    "ivf_sq8": ("IVF_SQ8", [{"nprobe": p, "rerank": 3} for p in (8, 16, 24, 32, 48, 64)]),
    "ivf_pq": ("IVF_PQ", [{"nprobe": p, "rerank": r} for p in (16, 24, 32, 48, 64)
                          for r in (5, 10)]),
    "annoy": ("ANNOY", [{"search_k": s} for s in (2000, 4000, 8000, 16000, 32000, 64000)]),
}


def parse_clients(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]; each count in 1..256."""
    try:
        out = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise InvalidArgument(f"--clients must be a comma list of integers: {e}") from None
    if not out or any(n < 1 or n > 256 for n in out):
        raise InvalidArgument(f"--clients counts must be in 1..256, got {text!r}")
    return out


def _memory() -> dict[str, float]:
    import psutil

    p = psutil.Process()
    info = p.memory_full_info()
    return {"rss_mb": info.rss / 2**20, "pss_mb": getattr(info, "pss", info.rss) / 2**20,
            "uss_mb": info.uss / 2**20}


def _loop(search: Any, queries: np.ndarray, start: int, stop_at: float,
          lat: list[float]) -> None:
    i = start
    while time.perf_counter() < stop_at:
        q = queries[i % len(queries)]
        t0 = time.perf_counter()
        search(q)
        lat.append(time.perf_counter() - t0)
        i += 1


def _searcher(client: Any, coll: str, k: int, params: dict[str, Any]) -> Any:
    sp = {"params": params}

    def search(q: np.ndarray) -> Any:
        return client.search(coll, q.reshape(1, -1), limit=k, search_params=sp)
    return search


def _worker(dsn: str, schema: str, coll: str, k: int, params: dict[str, Any],
            queries: np.ndarray, start: int, seconds: float, barrier: Any, out: Any,
            env: dict[str, str]) -> None:
    os.environ.update(env)
    from ..client import connect

    with connect(dsn, schema=schema, pool_size=2) as client:
        search = _searcher(client, coll, k, params)
        for j in range(5):  # loads the codes / warms the connection (not timed)
            search(queries[(start + j) % len(queries)])
        barrier.wait()
        lat: list[float] = []
        _loop(search, queries, start, time.perf_counter() + seconds, lat)
        out.put({"lat": lat, **_memory()})


def run_threads(client: Any, coll: str, k: int, params: dict[str, Any], queries: np.ndarray,
                n: int, seconds: float) -> dict[str, Any]:
    """N threads on one client for ``seconds``."""
    search = _searcher(client, coll, k, params)
    lats: list[list[float]] = [[] for _ in range(n)]
    stop_at = time.perf_counter() + seconds
    threads = [threading.Thread(target=_loop, args=(search, queries, i * 37, stop_at, lats[i]))
               for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    mem = _memory()
    return _summary([x for lat in lats for x in lat], wall, [mem])


def run_processes(dsn: str, schema: str, coll: str, k: int, params: dict[str, Any],
                  queries: np.ndarray, n: int, seconds: float,
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    """N spawned processes, a client each, for ``seconds`` after all have warmed up."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(dsn, schema, coll, k, params, queries, i * 37,
                                               seconds, barrier, out, env or {}))
             for i in range(n)]
    for p in procs:
        p.start()
    barrier.wait(timeout=600)
    t0 = time.perf_counter()
    res = [out.get(timeout=600 + seconds) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return _summary([x for r in res for x in r["lat"]], wall, res)


def _summary(lat: list[float], wall: float, mems: Sequence[dict[str, Any]]) -> dict[str, Any]:
    a = np.asarray(lat) * 1000.0
    return {"queries": len(lat), "qps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 2) if len(a) else None,
            "p99_ms": round(float(np.percentile(a, 99)), 2) if len(a) else None,
            **{key: round(float(np.mean([m[key] for m in mems])), 1)
               for key in ("rss_mb", "pss_mb", "uss_mb")}}


def pick_setting(client: Any, coll: str, name: str, queries: np.ndarray, truth: np.ndarray,
                 k: int, target: float) -> tuple[dict[str, Any], float]:
    """The first setting of the index's sweep that reaches ``target`` recall (else the
    last), with its recall, one client."""
    best: tuple[dict[str, Any], float] = ({}, 0.0)
    for params in SWEEPS[name][1]:
        found = [[h.id for h in client.search(coll, q.reshape(1, -1), limit=k,
                                              search_params={"params": params})[0]]
                 for q in queries]
        rec = recall_at_k(found, truth, k)
        best = (params, rec)
        if rec >= target:
            break
    return best


def run_concurrency(client: Any, dsn: str, ds: AnnDataset, report: Report, *,
                    indexes: Sequence[str], clients: Sequence[int], k: int = 10,
                    queries: int = 300, target: float = 0.95, seconds: float = 4.0,
                    modes: Sequence[str] = ("threads", "processes"),
                    collection: str = "bench_clients", keep: bool = False
                    ) -> list[dict[str, Any]]:
    """Load ``ds``, then per index: build, pick a setting, time every client count in
    every mode; one ``concurrency`` record per (index, mode, clients)."""
    from ..schema import CollectionSchema, DataType

    unknown = [i for i in indexes if i not in SWEEPS]
    if unknown:
        raise InvalidArgument(f"--clients runs {', '.join(SWEEPS)}; not {', '.join(unknown)}")
    metric = {"angular": "COSINE", "euclidean": "L2", "dot": "IP"}.get(ds.metric)
    if metric is None:
        raise InvalidArgument(f"--clients needs a float metric dataset, not {ds.metric}")
    qs = np.ascontiguousarray(ds.test[:queries], dtype=np.float32)
    truth = ds.neighbors[:queries, :k]
    x = np.ascontiguousarray(ds.train, dtype=np.float32)
    nlist = int(min(4096, max(4, round(np.sqrt(len(x))))))
    client.drop_collection(collection)
    schema = CollectionSchema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=x.shape[1])
    client.create_collection(collection, schema=schema, metric_type=metric)
    out = []
    try:
        with Progress(f"load {len(x):,}", total=len(x)) as bar:
            for lo in range(0, len(x), 20_000):
                hi = min(len(x), lo + 20_000)
                client.insert(collection, {"id": np.arange(lo, hi), "vector": x[lo:hi]})
                bar.update(hi - lo)
        from .harness import _pq_m

        for name in indexes:
            kind = SWEEPS[name][0]
            build = {"HNSW": {"M": 16, "efConstruction": 64}, "IVF_SQ8": {"nlist": nlist},
                     "IVF_PQ": {"nlist": nlist, "m": _pq_m(x.shape[1])},
                     "ANNOY": {"n_trees": 8}}[kind]
            report.note(f"clients: build {kind} {build}")
            t0 = time.perf_counter()
            client.create_index(collection, field_name="vector", index_type=kind,
                                metric_type=metric, params=build)
            build_s = time.perf_counter() - t0
            params, rec = pick_setting(client, collection, name, qs[:100], truth[:100], k,
                                       target)
            runs: list[tuple[str, str | None]] = [(m, None) for m in modes]
            if kind != "HNSW" and "processes" in modes:
                runs.append(("processes", "off"))
            for mode, shared in runs:
                for n in clients:
                    report.note(f"clients: {kind} {params} {mode} shared={shared} n={n}")
                    if mode == "threads":
                        r = run_threads(client, collection, k, params, qs, n, seconds)
                    else:
                        env = {"VECPG_CACHE_DIR": "off"} if shared == "off" else {}
                        r = run_processes(dsn, client.schema, collection, k, params, qs, n,
                                          seconds, env)
                    rec_ = {"kind": "concurrency", "dataset": ds.name, "index": kind,
                            "build_params": build, "build_s": round(build_s, 1),
                            "params": params, "recall": round(rec, 4), "mode": mode,
                            "shared": None if kind == "HNSW" else (shared or "on"),
                            "clients": n, "seconds": seconds, **r}
                    report.add(rec_)
                    out.append(rec_)
            client.drop_index(collection, "vector")
    finally:
        if not keep:
            client.drop_collection(collection)
    return out


def concurrency_table(records: Sequence[dict[str, Any]]) -> str:
    """The ``concurrency`` records as a markdown table."""
    rows = []
    for r in records:
        if r.get("kind") != "concurrency":
            continue
        setting = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        mode = r["mode"] + (" (private codes)" if r.get("shared") == "off" else "")
        rows.append([r["index"], setting, f"{r['recall']:.3f}", mode, str(r["clients"]),
                     f"{r['qps']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                     f"{r['rss_mb']:.0f}", f"{r['pss_mb']:.0f}"])
    return markdown_table(["index", "setting", "recall", "clients as", "N", "QPS", "p50 ms",
                           "p99 ms", "RSS MB/proc", "PSS MB/proc"], rows)
