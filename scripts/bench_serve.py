"""pymilvus through ``vecpg serve`` next to the same calls in-process on ``vecpg.Client``, and
next to Milvus Lite when it is installed (``pip install milvus-lite``; pymilvus'
``MilvusClient("./x.db")`` starts it), on a slice of the WordNet dev set.

    python scripts/bench_serve.py                       # 20,000 rows, 200 queries, 3 rounds
    python scripts/bench_serve.py --rows 5000 --queries 50 --rounds 2 --no-lite

Measured per system, in rounds whose order rotates: insert rows/s (the slice in batches of
1,000 into a fresh collection, ``create_collection(dimension=384, metric_type="COSINE")``
and the AUTOINDEX pymilvus' quick form adds, made in-process too), then search QPS at
limit 10, one query per call and batches of 10 queries per call (QPS counts queries).
Every call is from one client, one at a time.
The vecpg server runs in this process (``vecpg.wire.serve``) on the same Postgres as the
in-process client. Printed: each round, the medians, the ratios (serve / in-process,
serve / Milvus Lite), each round's ratio and the median of them, and the gRPC hop: the
milliseconds a search call takes through serve beyond the same call in-process, from the
rounds and from ``--pairs`` one-query calls made alternately (serve, in-process), which
load coming and going hits alike, and the server's own share of it (its Search handler
called directly, without gRPC, next to ``client.search``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vecpg  # noqa: E402
from vecpg.server import resolve_dsn  # noqa: E402

DEV_DATASET = ROOT.parent / "shared" / "datasets" / "wordnet-minilm-384-angular.hdf5"
BATCH = 1000
LIMIT = 10


def load(path: Path, rows: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return (np.asarray(f["train"][:rows], dtype=np.float32),
                np.asarray(f["test"][:queries], dtype=np.float32))


class System:
    """One way of making the calls: a MilvusClient-shaped client and its name."""

    def __init__(self, name: str, client: Any, collection: str, *,
                 index_like_pymilvus: bool = False) -> None:
        self.name = name
        self.client = client
        self.collection = collection
        self.index_like_pymilvus = index_like_pymilvus
        self.indexes: list[str] = []

    def insert(self, train: np.ndarray) -> float:
        """Rows per second inserting ``train`` in batches of 1,000 into a new collection."""
        c, name = self.client, self.collection
        if c.has_collection(name):
            c.drop_collection(name)
        c.create_collection(name, dimension=train.shape[1], metric_type="COSINE")
        if self.index_like_pymilvus:
            # pymilvus' quick create_collection follows with an AUTOINDEX on "vector"
            # (and serve runs it): the in-process client gets the same index
            ip = c.prepare_index_params()
            ip.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
            c.create_index(name, ip)
        self.indexes = [c.describe_index(name, ix).get("index_type", "?")
                        for ix in c.list_indexes(name)]
        batches = [[{"id": int(i), "vector": train[i]} for i in range(s, min(s + BATCH,
                                                                                len(train)))]
                   for s in range(0, len(train), BATCH)]
        t = time.perf_counter()
        for rows in batches:
            c.insert(name, rows)
        seconds = time.perf_counter() - t
        if hasattr(c, "flush"):
            c.flush(name)
        return len(train) / seconds

    def search(self, queries: np.ndarray, per_call: int) -> float:
        """Queries per second, ``per_call`` queries a call, limit 10."""
        c, name = self.client, self.collection
        calls = [queries[i:i + per_call] for i in range(0, len(queries), per_call)]
        c.search(name, calls[0], limit=LIMIT)  # warm: plans, connections
        t = time.perf_counter()
        for q in calls:
            res = c.search(name, q, limit=LIMIT)
            if len(res) != len(q) or len(res[0]) != LIMIT:
                raise RuntimeError(f"{self.name}: {len(res)} answers for {len(q)} queries")
        return len(queries) / (time.perf_counter() - t)

    def drop(self) -> None:
        self.client.drop_collection(self.collection)


def paired_latencies(local: System, serve: System, queries: np.ndarray,
                     n: int) -> list[tuple[float, float]]:
    """(in-process ms, serve ms) of the same one-query search, ``n`` times alternating
    which goes first."""
    out = []
    for i in range(n):
        q = queries[i % len(queries)][None, :]
        times = {}
        for s in ((local, serve) if i % 2 == 0 else (serve, local)):
            t = time.perf_counter()
            s.client.search(s.collection, q, limit=LIMIT)
            times[s.name] = 1000 * (time.perf_counter() - t)
        out.append((times[local.name], times[serve.name]))
    return out


class _NoMetadata:
    """A ServicerContext with no credentials (the server's own DSN)."""

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return []

    def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def handler_latencies(service: Any, local: System, serve: System, queries: np.ndarray,
                      n: int) -> list[tuple[float, float]]:
    """(client.search ms, MilvusService.Search ms) of the same one-query search, alternating;
    the handler gets the request pymilvus would send, without gRPC in between."""
    from pymilvus.client.prepare import Prepare

    ctx = _NoMetadata()
    out = []
    for i in range(n):
        q = queries[i % len(queries)][None, :]
        req = Prepare.search_requests_with_expr(serve.collection, "vector",
                                                {"metric_type": "COSINE", "params": {}},
                                                LIMIT, data=q.tolist())
        times = {}
        for who in (("local", "handler") if i % 2 == 0 else ("handler", "local")):
            t = time.perf_counter()
            if who == "local":
                local.client.search(local.collection, q, limit=LIMIT)
            else:
                resp = service.Search(req, ctx)
                if resp.status.code != 0:
                    raise RuntimeError(f"Search: {resp.status.reason}")
            times[who] = 1000 * (time.perf_counter() - t)
        out.append((times["local"], times["handler"]))
    return out


def milvus_lite(directory: str) -> Any | None:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus
    except ImportError:
        return None
    return pymilvus.MilvusClient(str(Path(directory) / "bench_serve.db"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--dataset", type=Path, default=DEV_DATASET)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-lite", action="store_true", help="leave Milvus Lite out")
    ap.add_argument("--pairs", type=int, default=400,
                    help="paired one-query calls (serve, in-process) for the hop")
    args = ap.parse_args()

    import pymilvus

    from vecpg.wire import serve

    train, queries = load(args.dataset, args.rows, args.queries)
    print(f"dataset: {args.dataset.name}: {len(train)} rows, {len(queries)} queries, "
          f"dim {train.shape[1]}", flush=True)
    dsn = resolve_dsn(args.dsn)
    local = vecpg.connect(dsn)
    server = serve("127.0.0.1", 0, dsn=dsn, workers=4)
    remote = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{server.port}")
    tmp = tempfile.TemporaryDirectory(prefix="bench_serve_")
    lite = None if args.no_lite else milvus_lite(tmp.name)
    systems = [System("in-process", local, "bench_serve_local", index_like_pymilvus=True),
               System("serve", remote, "bench_serve_wire")]
    if lite is not None:
        systems.append(System("milvus-lite", lite, "bench_serve_lite"))
    else:
        print("Milvus Lite: not installed (pip install milvus-lite), left out", flush=True)
    print(f"postgres: {local.get_server_version()}; vecpg serve on port {server.port}; "
          f"systems: {', '.join(s.name for s in systems)}", flush=True)

    metrics = ("insert rows/s", "search QPS x1", "search QPS x10")
    results: dict[str, dict[str, list[float]]] = {
        s.name: {m: [] for m in metrics} for s in systems}
    try:
        for r in range(args.rounds):
            order = systems[r % len(systems):] + systems[:r % len(systems)]
            for s in order:
                steps: list[tuple[str, Callable[[], float]]] = [
                    ("insert rows/s", lambda s=s: s.insert(train)),
                    ("search QPS x1", lambda s=s: s.search(queries, 1)),
                    ("search QPS x10", lambda s=s: s.search(queries, 10))]
                for metric, run in steps:
                    value = run()
                    results[s.name][metric].append(value)
                    print(f"round {r + 1}/{args.rounds}  {s.name:<12} {metric:<15} "
                          f"{value:10.1f}", flush=True)
        # the hop alone: the same query through serve and in-process, call after call (so
        # load that comes and goes hits both), on each system's last collection
        pairs = paired_latencies(systems[0], systems[1], queries, args.pairs)
        # the server's own share of the hop: its Search handler called directly (request
        # message parsed, vecpg's search, response message built), next to client.search
        translate = handler_latencies(server.service, systems[0], systems[1], queries,
                                      args.pairs)
    finally:
        for s in systems:
            s.drop()
        remote.close()
        if lite is not None:
            lite.close()
        server.stop(None)
        local.close()
        tmp.cleanup()

    print("\nindexes: " + ", ".join(f"{s.name} {s.indexes}" for s in systems))
    print("medians over rounds:")
    print(f"{'':<16}" + "".join(f"{s.name:>14}" for s in systems))
    for m in metrics:
        print(f"{m:<16}" + "".join(f"{statistics.median(results[s.name][m]):14.1f}"
                                   for s in systems))
    print("\nratios (per round; median):")
    for other in [s.name for s in systems if s.name != "serve"]:
        for m in metrics:
            per = [a / b for a, b in zip(results["serve"][m], results[other][m])]
            print(f"serve / {other:<12} {m:<15} "
                  + " ".join(f"{x:6.2f}" for x in per) + f"   median {statistics.median(per):.2f}")
    local_ms, serve_ms = (np.array(x) for x in zip(*pairs))
    print(f"\npaired calls ({len(pairs)}, one query each, alternating): in-process median "
          f"{np.median(local_ms):.2f} ms, serve {np.median(serve_ms):.2f} ms; hop (serve - "
          f"in-process, median of the pairs) {np.median(serve_ms - local_ms):.2f} ms, "
          f"p25 {np.percentile(serve_ms - local_ms, 25):.2f}, "
          f"p75 {np.percentile(serve_ms - local_ms, 75):.2f}")
    local_ms, handler_ms = (np.array(x) for x in zip(*translate))
    print(f"the server's share ({len(translate)} pairs): MilvusService.Search called directly "
          f"{np.median(handler_ms):.2f} ms vs client.search {np.median(local_ms):.2f} ms: "
          f"translation {np.median(handler_ms - local_ms):.2f} ms (median of the pairs); "
          "the rest of the hop is gRPC and pymilvus")
    # the gRPC hop: what a search call costs through serve beyond the same call in-process
    print("\ngRPC hop per search call from the rounds (serve - in-process, ms; per round; "
          "median):")
    for m, per_call in (("search QPS x1", 1), ("search QPS x10", 10)):
        hop = [1000 * per_call / a - 1000 * per_call / b
               for a, b in zip(results["serve"][m], results["in-process"][m])]
        print(f"{per_call:>2} queries a call {'':<3}" + " ".join(f"{x:6.2f}" for x in hop)
              + f"   median {statistics.median(hop):.2f} ms")


if __name__ == "__main__":
    main()
