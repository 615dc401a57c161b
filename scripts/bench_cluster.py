"""One node next to a Citus cluster (a coordinator and two workers), on the WordNet dev set:
recall@10 and QPS of HNSW searches side by side, then throughput with 1, 2, 4 and 8
concurrent clients. Not a test: a script that starts its own containers and removes them.

    python scripts/bench_cluster.py                      # 20,000 rows, 200 queries, 2 rounds
    python scripts/bench_cluster.py --rows 55000 --shards 8 --clients 1,2,4,8

Both sides run the same image family in Docker on this machine (Debian 13 PostgreSQL 17.12 +
pgvector 0.8.0; the cluster's image adds Citus 14.0.1): the single node is
``vecpg/pgvector:pg17``, the cluster ``vecpg/citus:pg17`` x 3 on one docker network
(``docker/images.sh`` builds both). All containers share this machine's cores, so the cluster
has no more hardware than the single node: what it shows is what fanning a search out to
shards costs and what it returns, not a scale-out speedup.

Each side: ``create_collection(dimension=384, metric_type="COSINE")`` (the cluster's with
``shard_count``), rows in batches of 2,000, HNSW (M=16, efConstruction=64; calibrated by
vecpg as create_index does). Recall@10 against the exact answer (the file's neighbours for
the full set, numpy's for a slice). Settings: ``ef`` 10, 20, 40, 100, 200 and the planner's
own choice for recall 0.95; per setting the systems alternate, each round's QPS counted
(one query per call, one client), medians printed. Throughput: N threads, each with its own
connection from one client's pool, searching with the planner's choice for a fixed time.
Results also go to ``scripts/out/bench_cluster.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vecpg  # noqa: E402

DEV_DATASET = ROOT.parent / "shared" / "datasets" / "wordnet-minilm-384-angular.hdf5"
SINGLE_IMAGE = "vecpg/pgvector:pg17"
CITUS_IMAGE = "vecpg/citus:pg17"
BATCH = 2000
LIMIT = 10
EFS = (10, 20, 40, 100, 200)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- containers -----------------------------------------------------------------------------

class Containers:
    """The containers this run starts (removed by :meth:`remove`)."""

    def __init__(self) -> None:
        import docker

        self.engine = docker.from_env(timeout=120)
        self.prefix = f"vecpg-bench-cluster-{uuid.uuid4().hex[:6]}"
        self.net = self.engine.networks.create(self.prefix)
        self.started: list[Any] = []

    def start(self, name: str, image: str, args: list[str]) -> str:
        """Start one Postgres container; its DSN from here (its bridge address when this
        machine reaches it: docker's port proxy adds ~2 ms a round trip, else the port)."""
        full = f"{self.prefix}-{name}"
        c = self.engine.containers.run(
            image, args, name=full, hostname=full, detach=True, network=self.net.name,
            shm_size="2g", ports={"5432/tcp": ("127.0.0.1", None)},
            environment={"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_PASSWORD": "x"})
        self.started.append(c)
        c.reload()
        ip = c.attrs["NetworkSettings"]["Networks"][self.net.name]["IPAddress"]
        port = c.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        for dsn in (f"postgresql://postgres@{ip}:5432/postgres",
                    f"postgresql://postgres@127.0.0.1:{port}/postgres"):
            if _wait(dsn, 60):
                return dsn
        raise RuntimeError(f"{full} did not come up: {c.logs(tail=20).decode()}")

    def remove(self) -> None:
        for c in self.started:
            c.remove(force=True, v=True)
        self.net.remove()


def _wait(dsn: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as c:
                c.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            time.sleep(0.5)
    return False


def start_cluster(ct: Containers) -> str:
    """A coordinator and two workers; the coordinator's DSN."""
    args = ["-c", "shared_preload_libraries=citus", "-c", "citus.node_conninfo=sslmode=disable"]
    dsns = {n: ct.start(n, CITUS_IMAGE, args) for n in ("coord", "w1", "w2")}
    for dsn in dsns.values():
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with psycopg.connect(dsns["coord"], autocommit=True) as c:
        c.execute("SELECT citus_set_coordinator_host(%s, 5432)", (f"{ct.prefix}-coord",))
        for w in ("w1", "w2"):
            c.execute("SELECT citus_add_node(%s, 5432)", (f"{ct.prefix}-{w}",))
    return dsns["coord"]


# -- the runs -------------------------------------------------------------------------------

def load(client: vecpg.Client, name: str, train: np.ndarray, **dist: Any) -> dict[str, float]:
    """Create, fill and index one collection; seconds per phase."""
    out: dict[str, float] = {}
    client.drop_collection(name)
    client.create_collection(name, dimension=train.shape[1], metric_type="COSINE", **dist)
    t0 = time.perf_counter()
    for s in range(0, len(train), BATCH):
        client.insert(name, {"id": np.arange(s, min(s + BATCH, len(train))),
                             "vector": train[s:s + BATCH]})
        done = min(s + BATCH, len(train))
        if done % 10000 < BATCH or done == len(train):
            log(f"  {name}: {done:,} / {len(train):,} rows")
    out["insert_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    last = [0.0]

    def progress(p: dict[str, Any]) -> None:
        if time.monotonic() - last[0] > 10:
            last[0] = time.monotonic()
            log(f"  {name}: index {p.get('phase')} {p.get('tuples_done') or ''}")
    client.create_index(name, client.prepare_index_params(
        "vector", index_type="HNSW", metric_type="COSINE",
        params={"M": 16, "efConstruction": 64}), progress=progress)
    out["index_and_calibrate_s"] = time.perf_counter() - t0
    log(f"  {name}: inserted in {out['insert_s']:.1f} s, indexed + calibrated in "
        f"{out['index_and_calibrate_s']:.1f} s")
    return out


def recall_qps(client: vecpg.Client, name: str, queries: np.ndarray, truth: np.ndarray,
               ef: int | None) -> tuple[float, float, str]:
    """recall@10, QPS (one query per call) and what ran."""
    params = {"params": {"ef": ef}} if ef is not None else None
    hits: list[list[Any]] = []
    t0 = time.perf_counter()
    for q in queries:
        hits.append([h["id"] for h in client.search(name, [q], limit=LIMIT,
                                                    search_params=params)[0]])
    qps = len(queries) / (time.perf_counter() - t0)
    rec = float(np.mean([len(set(h) & set(t[:LIMIT].tolist())) / LIMIT
                         for h, t in zip(hits, truth)]))
    ran = "ef" if ef is not None else "auto"
    if ef is None:
        e = client.explain(name, limit=LIMIT)
        ran = f"{e['strategy']} {e['params']}"
    return rec, qps, ran


def throughput(client: vecpg.Client, name: str, queries: np.ndarray, threads: int,
               seconds: float) -> float:
    """Searches per second with ``threads`` clients searching at once for ``seconds``."""
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def work(i: int) -> None:
        j = i
        while time.monotonic() < stop:
            client.search(name, [queries[j % len(queries)]], limit=LIMIT)
            counts[i] += 1
            j += threads
    started = time.perf_counter()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000, help="train rows (55000: all)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shards", type=int, default=8, help="shard count of the cluster's table")
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--seconds", type=float, default=6.0, help="per throughput measurement")
    ap.add_argument("--dataset", type=Path, default=DEV_DATASET)
    a = ap.parse_args()
    with h5py.File(a.dataset, "r") as f:
        n = min(a.rows, f["train"].shape[0])
        train = np.asarray(f["train"][:n], dtype=np.float32)
        queries = np.asarray(f["test"][:a.queries], dtype=np.float32)
        full = n == f["train"].shape[0]
        truth = np.asarray(f["neighbors"][:a.queries, :LIMIT]) if full else None
    if truth is None:  # a slice: the exact answer among its rows (unit vectors: by dot)
        truth = np.argsort(-(queries @ train.T), axis=1)[:, :LIMIT]
    log(f"{n:,} rows x {train.shape[1]} ({'all' if full else 'a slice'}), "
        f"{len(queries)} queries, {a.rounds} rounds, cluster shard_count {a.shards}")
    ct = Containers()
    results: dict[str, Any] = {"rows": n, "queries": len(queries), "shards": a.shards}
    try:
        log("starting a single node and a 3-node Citus cluster ...")
        single_dsn = ct.start("single", SINGLE_IMAGE, [])
        coord = start_cluster(ct)
        systems = {"single": vecpg.connect(single_dsn, pool_size=8),
                   "citus": vecpg.connect(coord, pool_size=8)}
        log(f"single {single_dsn}, coordinator {coord}")
        for sname, client in systems.items():
            log(f"loading {sname} ...")
            dist = {"shard_count": a.shards} if sname == "citus" else {}
            results[f"load_{sname}"] = load(client, "wordnet", train, **dist)
        table: list[dict[str, Any]] = []
        for ef in (*EFS, None):
            per: dict[str, list[float]] = {s: [] for s in systems}
            rec: dict[str, float] = {}
            ran: dict[str, str] = {}
            for r in range(a.rounds):
                order = list(systems) if r % 2 == 0 else list(reversed(systems))
                for sname in order:
                    rec[sname], qps, ran[sname] = recall_qps(systems[sname], "wordnet",
                                                             queries, truth, ef)
                    per[sname].append(qps)
            row = {"setting": f"ef={ef}" if ef is not None else "planner (recall 0.95)",
                   **{f"{s}_recall": rec[s] for s in systems},
                   **{f"{s}_qps": statistics.median(per[s]) for s in systems},
                   "ratio_rounds": [c / s for s, c in zip(per["single"], per["citus"])],
                   "ran": ran}
            table.append(row)
            log(f"  {row['setting']}: single recall {rec['single']:.3f} "
                f"{row['single_qps']:.0f} QPS | citus recall {rec['citus']:.3f} "
                f"{row['citus_qps']:.0f} QPS")
        results["search"] = table
        conc: list[dict[str, Any]] = []
        for threads in [int(x) for x in a.clients.split(",")]:
            got = {}
            for sname in systems:
                got[sname] = throughput(systems[sname], "wordnet", queries, threads, a.seconds)
            conc.append({"clients": threads, **got})
            log(f"  {threads} clients: single {got['single']:.0f} QPS, "
                f"citus {got['citus']:.0f} QPS")
        results["throughput"] = conc
        for c in systems.values():
            c.close()
    finally:
        ct.remove()
    print()
    print(f"WordNet MiniLM-384, {n:,} rows, {len(queries)} queries, limit 10, HNSW M=16 "
          f"efC=64; Citus: coordinator + 2 workers, {a.shards} shards; all on one machine")
    print(f"{'setting':<24}{'single recall':>14}{'single QPS':>11}{'citus recall':>14}"
          f"{'citus QPS':>11}{'citus/single':>14}")
    for row in table:
        ratio = statistics.median(row["ratio_rounds"])
        print(f"{row['setting']:<24}{row['single_recall']:>14.3f}{row['single_qps']:>11.0f}"
              f"{row['citus_recall']:>14.3f}{row['citus_qps']:>11.0f}{ratio:>13.2f}x")
    print(f"planner chose: single {table[-1]['ran']['single']}, "
          f"citus {table[-1]['ran']['citus']}")
    print()
    print(f"{'clients':<10}{'single QPS':>12}{'citus QPS':>12}{'citus/single':>14}")
    for c in conc:
        print(f"{c['clients']:<10}{c['single']:>12.0f}{c['citus']:>12.0f}"
              f"{c['citus'] / c['single']:>13.2f}x")
    for k in ("single", "citus"):
        ld = results[f"load_{k}"]
        print(f"load {k}: insert {ld['insert_s']:.1f} s, HNSW build + calibration "
              f"{ld['index_and_calibrate_s']:.1f} s")
    out = ROOT / "scripts" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_cluster.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
