"""``vecpg bench``: recall/QPS benchmarks on ann-benchmarks HDF5 files, side by side with the
raw pgvector SQL and reference libraries, with tables, JSON lines and plots.

    vecpg bench DATASET.hdf5 [--indexes hnsw,ivfflat,...] [--queries N] [--k 10] [--filters]
                [--references auto|none|hnswlib,faiss,milvus-lite] [--out DIR] [--quick]
    vecpg bench DATASET.hdf5 --clients 1,2,4,8,16 [--indexes hnsw,ivf_sq8,ivf_pq,annoy]
    vecpg bench --scale [--sizes 100000,300000,1000000] [--dim 128] [--vector-type float16]
    vecpg bench --report DIR     # tables and plots of an earlier run again

Modules: :mod:`.harness` (the dataset run), :mod:`.timing` (interleaved timing),
:mod:`.ingest` (insert vs raw COPY), :mod:`.references` (hnswlib, FAISS, Milvus Lite),
:mod:`.scale` (generated data, growing N), :mod:`.concurrency` (N concurrent clients),
:mod:`.companions` (companion indexes vs FAISS), :mod:`.report` (JSON lines, tables, PNG).
Needs the ``bench`` extra (h5py, matplotlib; optionally hnswlib, faiss-cpu, pymilvus,
milvus-lite).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument

__all__ = ["add_parser", "run_bench_command"]

#: Index names of ``--indexes``, in the order they run.
INDEX_NAMES = ("exact", "ivfflat", "hnsw", "ivf_sq8", "ivf_pq", "annoy")
DEFAULT_QUERIES = 500
QUICK_QUERIES = 100


def _csv(text: str) -> list[str]:
    return [t.strip().lower() for t in text.split(",") if t.strip()]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the ``vecpg`` command's subparsers."""
    b = sub.add_parser("bench", help="recall/QPS benchmark of an ann-benchmarks HDF5 file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("dataset", nargs="?", help="ann-benchmarks HDF5 file (not with --scale)")
    b.add_argument("--indexes", default=",".join(INDEX_NAMES),
                   help=f"comma list of {', '.join(INDEX_NAMES)} (default: all; a companion "
                        "index that is not available yet is skipped with a note)")
    b.add_argument("--queries", type=int, help=f"query vectors used (default {DEFAULT_QUERIES}, "
                                                f"--quick {QUICK_QUERIES}, --scale 200)")
    b.add_argument("--k", type=int, default=10, help="neighbours per query (10 or 100)")
    b.add_argument("--filters", action="store_true",
                   help="also run each filter of the file (neighbors_<filter> ground truth)")
    b.add_argument("--references", default="auto",
                   help="reference systems: auto (all installed), none, or a comma list of "
                        "hnswlib, faiss, milvus-lite")
    b.add_argument("--no-ingest", action="store_true", help="skip the insert vs COPY benchmark")
    b.add_argument("--out", help="output directory (default bench_out/<dataset>-<time>)")
    b.add_argument("--quick", action="store_true", help="fewer queries and sweep points")
    b.add_argument("--train-limit", type=int, help="use the first N train rows only (ground "
                                                   "truth recomputed)")
    b.add_argument("--point-budget", type=float, default=20.0,
                   help="seconds after which a sweep point stops (it keeps at least 50 "
                        "queries; 0: no limit)")
    b.add_argument("--sweep-budget", type=float, default=90.0,
                   help="seconds after which a sweep (one index, one filter) skips its "
                        "remaining points (0: no limit)")
    b.add_argument("--collection", default="bench", help="collection name (dropped at the end)")
    b.add_argument("--keep", action="store_true", help="keep the collection at the end")
    b.add_argument("--scale", action="store_true",
                   help="scale mode: generated clustered data of growing size")
    b.add_argument("--sizes", default="100000,300000,1000000", help="--scale: row counts")
    b.add_argument("--dim", type=int, default=128, help="--scale: dimension")
    b.add_argument("--vector-type", default="float", choices=("float", "float16"),
                   help="--scale: stored vector type (float16: halfvec)")
    b.add_argument("--target-recall", type=float, default=0.95,
                   help="--scale: recall at which QPS is reported")
    b.add_argument("--clients", metavar="N[,N...]",
                   help="concurrency mode: QPS, p50/p99 and memory per process with N "
                        "concurrent clients (threads and processes) per index, at the "
                        "cheapest setting reaching --target-recall (indexes: hnsw, ivf_sq8, "
                        "ivf_pq, annoy)")
    b.add_argument("--seconds", type=float, default=4.0,
                   help="--clients: timed seconds per client count")
    b.add_argument("--report", metavar="DIR",
                   help="draw the tables and plots of an earlier run's DIR/results.jsonl again")
    b.set_defaults(func=run_bench_command)
    return b


def _references(text: str) -> tuple[str, ...]:
    from .references import REFERENCES, available

    names = _csv(text)
    if names in (["auto"], []):
        return tuple(available())
    if names == ["none"]:
        return ()
    names = ["milvus-lite" if n in ("milvus", "milvus_lite") else n for n in names]
    bad = [n for n in names if n not in REFERENCES]
    if bad:
        raise InvalidArgument(f"unknown reference {bad[0]!r}; expected auto, none or some of "
                              f"{', '.join(REFERENCES)}")
    return tuple(names)


def run_bench_command(args: argparse.Namespace) -> int:
    """``vecpg bench``: run, print the tables, write ``results.jsonl``, ``tables.md``, PNGs."""
    from ..client import connect
    from .report import Report

    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.report:
        if not (Path(args.report) / "results.jsonl").is_file():
            raise InvalidArgument(f"{args.report!r} holds no results.jsonl")
        write_outputs(Report.read(args.report))
        return 0
    if args.scale:
        if args.dataset:
            raise InvalidArgument("--scale generates its data: give no dataset file")
        try:
            sizes = [int(s) for s in _csv(args.sizes)]
        except ValueError as e:
            raise InvalidArgument(f"--sizes must be a comma list of integers: {e}") from e
        out = Path(args.out or f"bench_out/scale-{stamp}")
        report = Report(out, stream=sys.stderr)
        from .harness import machine_info
        from .scale import run_scale

        with connect(args.dsn, data_dir=args.data_dir, schema=args.schema) as client:
            report.add({"kind": "run", "mode": "scale", "sizes": sizes, "dim": args.dim,
                        "vector_type": args.vector_type,
                        **machine_info(client)})
            recs = run_scale(client, report, sizes=sizes, dim=args.dim,
                             queries=args.queries or 200, k=args.k,
                             target_recall=args.target_recall, keep=args.keep,
                             vector_type=args.vector_type)
        if not recs:
            raise InvalidArgument("--sizes gave no size to run")
        write_outputs(report)
        return 0

    if not args.dataset:
        raise InvalidArgument("vecpg bench needs a dataset file (or --scale)")
    path = Path(args.dataset)
    if not path.is_file():
        raise InvalidArgument(f"dataset file {str(path)!r} does not exist")
    from ..datasets import load_hdf5
    from .harness import BenchOptions, run_dataset

    if args.clients:
        from .concurrency import SWEEPS, parse_clients, run_concurrency

        counts = parse_clients(args.clients)
        names = [i for i in _csv(args.indexes) if i in SWEEPS] if args.indexes != ",".join(
            INDEX_NAMES) else list(SWEEPS)
        ds = load_hdf5(path, limit_train=args.train_limit)
        out = Path(args.out or f"bench_out/{ds.name}-clients-{stamp}")
        report = Report(out, stream=sys.stderr)
        with connect(args.dsn, data_dir=args.data_dir, schema=args.schema,
                     pool_size=max(counts) + 2) as client:
            from .harness import machine_info

            report.add({"kind": "run", "mode": "clients", "dataset": ds.name,
                        "clients": counts, **machine_info(client)})
            run_concurrency(client, client.dsn, ds, report, indexes=names, clients=counts,
                            k=args.k, queries=args.queries or 300,
                            target=args.target_recall, seconds=args.seconds,
                            keep=args.keep)
        write_outputs(report)
        return 0

    indexes = tuple(_csv(args.indexes))
    quick = bool(args.quick)
    opts = BenchOptions(indexes=indexes,
                        queries=args.queries or (QUICK_QUERIES if quick else DEFAULT_QUERIES),
                        k=args.k, filters=args.filters, quick=quick, ingest=not args.no_ingest,
                        ingest_repeat=1 if quick else 2, references=_references(args.references),
                        collection=args.collection, keep=args.keep, warmup=3 if quick else 10,
                        point_budget_s=args.point_budget or None,
                        sweep_budget_s=args.sweep_budget or None)
    ds = load_hdf5(path, limit_train=args.train_limit)
    out = Path(args.out or f"bench_out/{ds.name}-{stamp}")
    report = Report(out, stream=sys.stderr)
    t0 = time.perf_counter()
    with connect(args.dsn, data_dir=args.data_dir, schema=args.schema) as client:
        run_dataset(client, ds, opts, report)
    write_outputs(report, f"\ntotal time {time.perf_counter() - t0:.0f} s\n")
    return 0


def write_outputs(report: Any, footer: str = "") -> None:
    """Print the tables and write ``tables.md`` and the PNGs next to ``results.jsonl``."""
    from .report import full_report, plot_recall_qps, plot_scale

    out = report.out_dir
    if report.of_kind("concurrency"):
        from .concurrency import concurrency_table

        text = concurrency_table(report.records) + "\n"
        pngs = []
    elif report.of_kind("scale"):
        from .scale import scale_table

        text = scale_table(report.records) + "\n"
        pngs = [plot_scale(report.records, out / "scale.png")]
    else:
        title = next((r.get("dataset", "") for r in report.records if r.get("kind") == "run"), "")
        text = full_report(report) + footer
        pngs = [plot_recall_qps(report.records, out / name, filtered=filtered, title=title)
                for filtered, name in ((False, "recall_qps.png"),
                                       (True, "recall_qps_filtered.png"))]
    print(text)
    (out / "tables.md").write_text(text)
    print("wrote " + ", ".join(str(p) for p in [report.path, *pngs] if p is not None))
