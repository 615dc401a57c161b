"""Reference systems, when installed: hnswlib and FAISS in-process, Milvus Lite through
pymilvus. Same train rows, same queries, same metric, same k, same sweeps as vecpg's
indexes, one query per call (single-client QPS, as for vecpg).

In-process libraries search with one thread (the single-client comparison) and build with
all cores (as Postgres may use parallel maintenance workers). They skip the filtered
queries except Milvus Lite, which takes the same filter expressions as vecpg.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets import AnnDataset, recall_at_k
from ..progress import Progress
from .report import Report
from .timing import Side, Timed, time_sides

REFERENCES = ("hnswlib", "faiss", "milvus-lite")
_MODULES = {"hnswlib": "hnswlib", "faiss": "faiss", "milvus-lite": "milvus_lite"}


def available(names: Sequence[str] = REFERENCES) -> list[str]:
    """The reference systems among ``names`` whose Python package is importable."""
    out = []
    for n in names:
        mod = _MODULES.get(n)
        if mod and importlib.util.find_spec(mod) is not None and (
                n != "milvus-lite" or importlib.util.find_spec("pymilvus") is not None):
            out.append(n)
    return out


def _prepared(x: np.ndarray, metric: str) -> np.ndarray:
    """float32 rows; unit length for angular, so inner product ranks as cosine."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if metric == "angular":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    return x


class _Runner:
    def __init__(self, ds: AnnDataset, queries: np.ndarray, truth: np.ndarray, k: int,
                 report: Report, warmup: int = 10, budget_s: float | None = None) -> None:
        self.ds, self.k, self.report, self.warmup = ds, k, report, warmup
        self.budget_s = budget_s
        self.queries = _prepared(queries, ds.metric)
        self.truth = truth
        self.train = _prepared(ds.train, ds.metric)

    def record(self, system: str, index: str, params: dict[str, Any], param: str | None,
               value: Any, timed: Timed, build: dict[str, Any], truth: np.ndarray | None = None,
               case: Any = None) -> None:
        """Add one search point to the report in the same shape as vecpg's records, recall
        scored on the queries that ran (a time budget may cut a point short)."""
        truth = (self.truth if truth is None else truth)[:len(timed.found)]
        k = self.k
        rec: dict[str, Any] = {
            "kind": "search", "dataset": self.ds.name, "system": system, "index": index,
            "build_params": params, "param": param, "value": value,
            "filter": case.name if case else None,
            "selectivity": case.selectivity if case else None, "k": k,
            "queries": len(timed.found),
            "recall": round(recall_at_k(timed.found, truth[:, :k], k), 4),
            "build_s": build.get("build_s"), "index_bytes": build.get("index_bytes"),
            **timed.summary()}
        if k >= 10:
            rec["recall@10"] = round(recall_at_k([f[:10] for f in timed.found],
                                                 truth[:, :10], 10), 4)
        if k >= 100:
            rec["recall@100"] = round(recall_at_k(timed.found, truth[:, :100], 100), 4)
        self.report.add(rec)

    def build_record(self, system: str, index: str, params: dict[str, Any], seconds: float,
                     nbytes: int | None, **extra: Any) -> dict[str, Any]:
        """Add one index build to the report and return it (search points refer to it)."""
        n = len(self.train)
        return self.report.add({"kind": "build", "dataset": self.ds.name, "system": system,
                                "index": index, "params": params, "build_s": round(seconds, 3),
                                "index_bytes": nbytes,
                                "bytes_per_vector": nbytes / n if nbytes else None, **extra})

    def time(self, side: Side, *, warmup: int | None = None, min_queries: int = 50) -> Timed:
        """Time one library's search over the queries, one query per call, within the run's
        budget, as vecpg's side is timed."""
        return time_sides(self.queries, [side], budget_s=self.budget_s, min_queries=min_queries,
                          warmup=self.warmup if warmup is None else warmup)[0]

    # -- hnswlib --------------------------------------------------------------------------
    def hnswlib(self, specs: dict[str, Any]) -> None:
        """hnswlib with vecpg's HNSW build parameters, built on every core and searched on
        one thread at each ``ef`` of the sweep (at least k, as hnswlib requires)."""
        import hnswlib

        spec = specs["hnsw"]
        space = {"angular": "cosine", "euclidean": "l2", "dot": "ip"}[self.ds.metric]
        n, dim = self.train.shape
        index = hnswlib.Index(space=space, dim=dim)
        t0 = time.perf_counter()
        index.init_index(max_elements=n, M=spec.params["M"], ef_construction=spec.params[
            "efConstruction"], random_seed=1)
        index.add_items(self.train, np.arange(n), num_threads=os.cpu_count() or 1)
        seconds = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "index.bin")
            index.save_index(path)
            nbytes = os.path.getsize(path)
        build = self.build_record("hnswlib", "HNSW", spec.params, seconds, nbytes,
                                  memory="serialized index size")
        index.set_num_threads(1)
        k = self.k
        for ef in spec.values:
            index.set_ef(max(ef, k))

            def run(q: np.ndarray) -> list[int]:
                labels, _ = index.knn_query(q.reshape(1, -1), k=k, num_threads=1)
                return [int(x) for x in labels[0]]
            self.record("hnswlib", "HNSW", spec.params, "ef", ef, self.time(run), build)

    # -- faiss ----------------------------------------------------------------------------
    def faiss(self, specs: dict[str, Any]) -> None:
        """faiss HNSW and IVF_FLAT with vecpg's build parameters, built on every core and
        searched on one thread, so QPS compares with one vecpg connection."""
        import faiss

        dim = self.train.shape[1]
        ip = self.ds.metric in ("angular", "dot")
        mt = faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2
        k = self.k
        threads = faiss.omp_get_max_threads()

        def run_with(index: Any) -> Side:
            def run(q: np.ndarray) -> list[int]:
                _, labels = index.search(q.reshape(1, -1), k)
                return [int(x) for x in labels[0] if x >= 0]
            return run

        def size(index: Any) -> int:
            return int(faiss.serialize_index(index).nbytes)

        spec = specs["hnsw"]
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, spec.params["M"], mt)
        hnsw.hnsw.efConstruction = spec.params["efConstruction"]
        hnsw.add(self.train)
        build = self.build_record("faiss", "HNSW", spec.params, time.perf_counter() - t0,
                                  size(hnsw), memory="serialized index size")
        faiss.omp_set_num_threads(1)
        for ef in spec.values:
            hnsw.hnsw.efSearch = max(ef, k)
            self.record("faiss", "HNSW", spec.params, "ef", ef, self.time(run_with(hnsw)), build)
        del hnsw

        spec = specs["ivfflat"]
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        quantizer = faiss.IndexFlatIP(dim) if ip else faiss.IndexFlatL2(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, spec.params["nlist"], mt)
        ivf.train(self.train)
        ivf.add(self.train)
        build = self.build_record("faiss", "IVF_FLAT", spec.params, time.perf_counter() - t0,
                                  size(ivf), memory="serialized index size")
        faiss.omp_set_num_threads(1)
        for nprobe in spec.values:
            ivf.nprobe = nprobe
            self.record("faiss", "IVF_FLAT", spec.params, "nprobe", nprobe,
                        self.time(run_with(ivf)), build)
        faiss.omp_set_num_threads(threads)

    # -- Milvus Lite ----------------------------------------------------------------------
    def milvus_lite(self, specs: dict[str, Any], filters: Sequence[Any],
                    scalar_fields: dict[str, np.ndarray]) -> None:
        """Milvus Lite in a temporary directory: the same rows and scalar fields, HNSW, the
        filtered sweeps too; flushed before indexing so no segment is brute-forced."""
        from pymilvus import DataType as MDataType
        from pymilvus import MilvusClient

        metric = {"angular": "COSINE", "euclidean": "L2", "dot": "IP"}[self.ds.metric]
        n, dim = self.train.shape
        tmp = tempfile.mkdtemp(prefix="vecpg-bench-milvus-")
        client = MilvusClient(os.path.join(tmp, "milvus.db"))
        try:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", MDataType.INT64, is_primary=True)
            schema.add_field("vector", MDataType.FLOAT_VECTOR, dim=dim)
            for name in scalar_fields:
                schema.add_field(name, MDataType.INT32)
            client.create_collection("bench", schema=schema)
            t0 = time.perf_counter()
            with Progress("milvus-lite load", total=n) as bar:
                for lo in range(0, n, 5000):
                    hi = min(n, lo + 5000)
                    rows = [{"id": i, "vector": self.train[i].tolist(),
                             **{k: int(v[i]) for k, v in scalar_fields.items()}}
                            for i in range(lo, hi)]
                    client.insert("bench", rows)
                    bar.update(hi - lo)
            # sealed segments get the index; unflushed (growing) ones are brute-forced,
            # measured at ~1-4 s per query here
            client.flush("bench")
            load_s = time.perf_counter() - t0
            spec = specs["hnsw"]
            ip = client.prepare_index_params()
            ip.add_index("vector", index_type="HNSW", metric_type=metric, params=spec.params)
            t0 = time.perf_counter()
            client.create_index("bench", ip)
            client.load_collection("bench")
            build = self.build_record("milvus-lite", "HNSW", spec.params,
                                      time.perf_counter() - t0, _dir_size(tmp),
                                      memory="data directory size", load_s=round(load_s, 3),
                                      describe=client.describe_index("bench", "vector"))
            k = self.k
            for case in [None, *filters]:
                # Milvus Lite answers in tens of ms here: fewer points keep the run short
                values = spec.filter_values
                expr = case.expr if case else ""
                truth = case.truth if case else None
                for ef in values:
                    params = {"metric_type": metric, "params": {"ef": max(ef, k)}}

                    def run(q: np.ndarray, expr: str = expr, params: Any = params) -> list[int]:
                        res = client.search("bench", [q.tolist()], limit=k, filter=expr,
                                            search_params=params)
                        return [int(h["id"]) for h in res[0]]
                    self.record("milvus-lite", "HNSW", spec.params, "ef", ef,
                                self.time(run, warmup=3, min_queries=20), build, truth=truth,
                                case=case)
        finally:
            client.close()
            shutil.rmtree(tmp, ignore_errors=True)


def _dir_size(path: str) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):  # a file removed while we walk
                total += os.path.getsize(os.path.join(root, name))
    return total


def run_references(names: Sequence[str], ds: AnnDataset, queries: np.ndarray,
                   truth: np.ndarray, k: int, specs: dict[str, Any], report: Report, *,
                   filters: Sequence[Any] = (), scalar_fields: dict[str, np.ndarray] | None = None,
                   warmup: int = 10, budget_s: float | None = None) -> None:
    """Benchmark each named reference system that is installed; a missing one is noted."""
    if ds.metric not in ("angular", "euclidean", "dot"):
        report.note(f"references skipped: metric {ds.metric} is not a float metric")
        return
    runner = _Runner(ds, queries, truth, k, report, warmup, budget_s)
    have = available(names)
    for name in names:
        if name not in have:
            report.add({"kind": "skip", "system": name, "index": "",
                        "reason": "not installed (pip install 'vecpg[bench]')"})
            report.note(f"skip: reference {name}: not installed")
            continue
        report.note(f"reference: {name}")
        try:
            if name == "hnswlib":
                runner.hnswlib(specs)
            elif name == "faiss":
                runner.faiss(specs)
            elif name == "milvus-lite":
                runner.milvus_lite(specs, filters, scalar_fields or {})
        except Exception as e:  # noqa: BLE001 - a failing reference must not lose vecpg's numbers
            report.add({"kind": "error", "system": name, "index": "",
                        "reason": f"{type(e).__name__}: {e}"})
            report.note(f"error: reference {name}: {type(e).__name__}: {e}")
