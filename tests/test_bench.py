"""``vecpg bench`` end to end on a tiny generated ann-benchmarks file, through the CLI entry
point and a real Postgres: JSON lines, the printed table, the plots, and recall values that
are right (exact search must agree with the numpy ground truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from vecpg.bench.report import point_label
from vecpg.bench.scale import clustered_data
from vecpg.bench.timing import Timed, same_ids, time_sides
from vecpg.cli import main
from vecpg.datasets import exact_knn

N, DIM, NQ, K = 2000, 16, 40, 100


def make_dataset(path: Path) -> Path:
    """2000 x 16 angular vectors, 40 queries, a ``cls`` attribute with two filters, and
    their exact top-100 computed in numpy, in the dev dataset's format."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(20, DIM))
    train = (centres[rng.integers(0, 20, N)] + 0.3 * rng.normal(size=(N, DIM))).astype(np.float32)
    test = (centres[rng.integers(0, 20, NQ)] + 0.3 * rng.normal(size=(NQ, DIM))).astype(np.float32)
    cls = (np.arange(N) % 10).astype(np.uint8)
    cls[::2] = 0  # cls_0 matches 50% of rows, cls_3 10%
    nb, d = exact_knn(train, test, K, "angular")
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f.attrs["filters"] = " ".join(f"cls_{v}:{np.mean(cls == v):.4f}" for v in (0, 3))
        f["train"], f["test"], f["neighbors"], f["distances"] = train, test, nb, d
        f["train_cls"], f["test_cls"] = cls, np.zeros(NQ, dtype=np.uint8)
        for v in (0, 3):
            fnb, fd = exact_knn(train, test, K, "angular", mask=cls == v)
            f[f"neighbors_cls_{v}"], f[f"distances_cls_{v}"] = fnb, fd
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("bench") / "tiny-16-angular.hdf5")


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_bench_cli_end_to_end(dsn: str, schema_name: str, dataset: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["--dsn", dsn, "--schema", schema_name, "bench", str(dataset), "--quick",
               "--filters", "--queries", "20", "--indexes", "exact,ivfflat,hnsw,ivf_pq",
               "--references", "none", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    recs = _records(out)
    kinds = {r["kind"] for r in recs}
    assert {"run", "load", "ingest", "build", "search"} <= kinds

    run = next(r for r in recs if r["kind"] == "run")
    assert run["n_train"] == N and run["queries"] == 20 and run["pgvector"]
    assert sorted(run["filters"]) == ["cls_0", "cls_3"]
    load = next(r for r in recs if r["kind"] == "load")
    assert load["rows"] == N and load["scalar_fields"] == ["cls"]
    assert {r["path"] for r in recs if r["kind"] == "ingest"} == {
        "vecpg insert (numpy columns)", "raw COPY BINARY"}

    search = [r for r in recs if r["kind"] == "search"]
    for r in search:
        assert {"system", "index", "param", "value", "filter", "recall", "qps", "p50_ms",
                "p99_ms", "k", "queries"} <= set(r), r
        assert r["queries"] == 20 and r["qps"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
    exact = [r for r in search if r["index"] == "FLAT"]
    # unfiltered and both filters, through vecpg and through the raw SQL
    assert {(r["system"], r["filter"]) for r in exact} == {
        (s, f) for s in ("vecpg", "pgvector-sql") for f in (None, "cls_0", "cls_3")}
    assert all(r["recall"] == 1.0 for r in exact), [(r["filter"], r["recall"]) for r in exact]
    hnsw = [r for r in search if r["index"] == "HNSW" and r["system"] == "vecpg"]
    assert len({r["value"] for r in hnsw if r["filter"] is None}) >= 2
    assert all(0 < r["recall"] <= 1 for r in hnsw)
    # the planner's own choice (recall targets), named by the strategy it ran, as plotted
    auto = [r for r in search if r["index"] == "auto"]
    assert {r["filter"] for r in auto} == {None, "cls_0", "cls_3"}
    assert all(r["strategy"] for r in auto), auto
    assert point_label(auto[0]).startswith(f"{auto[0]['value']}: {auto[0]['strategy']}")
    # the raw baseline runs the same statement with the same settings: same rows
    for r in (r for r in search if r["system"] == "vecpg" and r["index"] in ("FLAT", "HNSW")):
        assert r["same_ids"] >= 0.9 and r["vecpg_over_raw"] > 0, r
    assert {r["index"] for r in recs if r["kind"] == "build"} >= {"HNSW", "IVF_FLAT"}
    assert all(r["index_bytes"] > 0 for r in recs
               if r["kind"] == "build" and r["index"] in ("HNSW", "IVF_FLAT"))
    # a companion index either ran or was skipped with a reason, never silently absent
    assert any(r.get("index") == "IVF_PQ" and r["kind"] in ("search", "skip", "error")
               for r in recs)

    for name in ("recall_qps.png", "recall_qps_filtered.png"):
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "| system" in printed and "pgvector-sql" in printed and "vecpg/raw" in printed
    assert (out / "tables.md").read_text().startswith("dataset tiny-16-angular")


def test_bench_k100_reports_both_recalls(dsn: str, schema_name: str, dataset: Path,
                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = main(["--dsn", dsn, "--schema", schema_name, "bench", str(dataset), "--quick",
               "--indexes", "exact,hnsw", "--k", "100", "--queries", "10", "--no-ingest",
               "--references", "none", "--out", str(out)])
    assert rc == 0
    search = [r for r in _records(out) if r["kind"] == "search"]
    assert search and all({"recall@10", "recall@100"} <= set(r) for r in search)
    assert all(r["recall@100"] == 1.0 for r in search if r["index"] == "FLAT")


def test_bench_bad_arguments(dsn: str, schema_name: str, dataset: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--dsn", dsn, "--schema", schema_name, "bench"]
    assert main(base + [str(tmp_path / "missing.hdf5")]) == 2
    assert main(base + [str(dataset), "--indexes", "hnsw,bogus", "--out", str(tmp_path)]) == 2
    assert main(base + [str(dataset), "--k", "500", "--out", str(tmp_path)]) == 2
    assert main(base + [str(dataset), "--references", "nope"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "bogus" in err and "k must be" in err and "nope" in err


def test_scale_mode_small(dsn: str, schema_name: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scale"
    rc = main(["--dsn", dsn, "--schema", schema_name, "bench", "--scale", "--sizes",
               "1000,3000", "--dim", "16", "--queries", "20", "--out", str(out)])
    assert rc == 0
    recs = [r for r in _records(out) if r["kind"] == "scale"]
    assert [r["n"] for r in recs] == [1000, 3000]
    for r in recs:
        assert r["build_s"] > 0 and r["index_bytes"] > 0 and r["exact_recall"] == 1.0
        assert r["sweep"] and all(0 < p["recall"] <= 1 for p in r["sweep"])
    assert recs[1]["table_bytes"] > recs[0]["table_bytes"]
    assert (out / "scale.png").stat().st_size > 10_000
    assert "HNSW build s" in capsys.readouterr().out


def test_references_match_the_ground_truth(tmp_path: Path) -> None:
    """The reference libraries, on the same data: high recall at a generous setting."""
    pytest.importorskip("hnswlib")
    pytest.importorskip("faiss")
    from vecpg.bench.harness import index_specs
    from vecpg.bench.references import run_references
    from vecpg.bench.report import Report
    from vecpg.datasets import load_hdf5

    ds = load_hdf5(make_dataset(tmp_path / "tiny.hdf5"))
    report = Report(tmp_path / "out")
    run_references(["hnswlib", "faiss"], ds, ds.test, ds.neighbors, 10,
                   index_specs(N, DIM, 10, quick=True), report)
    best: dict[tuple[str, str], float] = {}
    for r in report.of_kind("search"):
        key = (r["system"], r["index"])
        best[key] = max(best.get(key, 0.0), r["recall"])
    assert set(best) == {("hnswlib", "HNSW"), ("faiss", "HNSW"), ("faiss", "IVF_FLAT")}
    assert all(v >= 0.9 for v in best.values()), best


def test_timing_interleaves_and_compares() -> None:
    calls: list[str] = []

    def a(q: np.ndarray) -> list[int]:
        calls.append("a")
        return [1, 2]

    def b(q: np.ndarray) -> list[int]:
        calls.append("b")
        return [1, 3] if q[0] > 0 else [1, 2]

    qs = np.array([[1.0], [-1.0], [1.0], [-1.0]], dtype=np.float32)
    ta, tb = time_sides(qs, [a, b], warmup=0)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # who goes first alternates
    assert len(ta.seconds) == len(tb.seconds) == 4 and ta.qps > 0
    assert same_ids(ta, tb) == 0.5
    assert Timed([[1]], [0.5]).summary()["qps"] == 2.0


def test_clustered_data_is_deterministic() -> None:
    a, b = clustered_data(500, 8, seed=3), clustered_data(500, 8, seed=3)
    assert a.shape == (500, 8) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, clustered_data(500, 8, seed=4))


def test_unavailable_index_is_skipped_with_a_note(
        dsn: str, schema_name: str, dataset: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A companion index whose create_index says "not available yet" is skipped, noted,
    and the other indexes still run (the harness picks it up once it exists)."""
    import sys

    import vecpg
    from vecpg.bench.harness import BenchOptions, DatasetBench
    from vecpg.bench.report import Report
    from vecpg.datasets import load_hdf5
    from vecpg.errors import InvalidArgument

    ds = load_hdf5(dataset)
    with vecpg.connect(dsn, schema=schema_name) as client:
        real = client.create_index

        def create_index(collection: str, *args: Any, **kw: Any) -> None:
            if kw.get("index_type") == "ANNOY":
                raise InvalidArgument("index type ANNOY is not available yet; use HNSW")
            real(collection, *args, **kw)

        client.create_index = create_index  # type: ignore[method-assign]
        report = Report(tmp_path, stream=sys.stderr)
        bench = DatasetBench(client, ds, BenchOptions(indexes=("annoy", "hnsw"), queries=10,
                                                      quick=True, warmup=1), report)
        try:
            bench.load()
            bench.run_index(bench.specs["annoy"])
            bench.run_index(bench.specs["hnsw"])
        finally:
            bench.close()
            client.drop_collection(bench.coll)
    skips = report.of_kind("skip")
    assert [(r["index"], "not available yet" in r["reason"]) for r in skips] == [("ANNOY", True)]
    assert not any(r["index"] == "ANNOY" for r in report.of_kind("search"))
    assert any(r["index"] == "HNSW" for r in report.of_kind("search"))
    assert "skip: ANNOY" in capsys.readouterr().err


def test_clients_mode_small(dsn: str, schema_name: str, dataset: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """--clients: threads and processes per client count, companions also with private
    codes; every record has QPS, latency and memory, at a setting that reached recall."""
    out = tmp_path / "clients"
    rc = main(["--dsn", dsn, "--schema", schema_name, "bench", str(dataset), "--clients",
               "1,2", "--indexes", "ivf_sq8", "--queries", "20", "--seconds", "0.5",
               "--target-recall", "0.9", "--k", "10", "--out", str(out)])
    assert rc == 0
    recs = [r for r in _records(out) if r["kind"] == "concurrency"]
    assert [(r["mode"], r["shared"], r["clients"]) for r in recs] == [
        ("threads", "on", 1), ("threads", "on", 2), ("processes", "on", 1),
        ("processes", "on", 2), ("processes", "off", 1), ("processes", "off", 2)]
    for r in recs:
        assert r["index"] == "IVF_SQ8" and r["recall"] >= 0.9
        assert r["queries"] > 0 and r["qps"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["rss_mb"] > 0 and 0 < r["pss_mb"] <= r["rss_mb"] + 1
    assert "PSS MB/proc" in capsys.readouterr().out
    assert main(["--dsn", dsn, "--schema", schema_name, "bench", str(dataset),
                 "--clients", "0,x"]) == 2


def test_scale_mode_halfvec(dsn: str, schema_name: str, tmp_path: Path) -> None:
    out = tmp_path / "scale16"
    rc = main(["--dsn", dsn, "--schema", schema_name, "bench", "--scale", "--sizes", "1000",
               "--dim", "16", "--queries", "20", "--vector-type", "float16", "--out", str(out)])
    assert rc == 0
    (rec,) = [r for r in _records(out) if r["kind"] == "scale"]
    assert rec["vector_type"] == "float16" and rec["exact_recall"] == 1.0
    assert rec["settings"]["shared_buffers"] and rec["build_mem_mb"] > 0
