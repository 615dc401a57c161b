"""Searches on the primary alone next to primary + streaming standby routing (vecpg.replicas),
on the WordNet dev set, in one run: recall@10 and QPS side by side, with 1, 2, 4 and 8
concurrent clients (threads of this process sharing one vecpg client, as a web server's
workers would).

    python scripts/bench_replicas.py                       # all 55,000 rows, 1,000 queries
    python scripts/bench_replicas.py --rows 20000 --seconds 2 --rounds 2

The cluster is made here with the embedded server's binaries (vecpg.localcluster: a primary
and one standby from pg_basebackup, Unix sockets only). Both servers and this process run
on the same machine and share its cores: on a 2-core machine a standby adds no CPU, so
routing can only move work, not add capacity; the numbers show the routing's own cost and
what spreading reads does when the cores are shared.

Configurations (one HNSW index, M=16, efConstruction=64, searched at ef=64 so that every
configuration runs the same plan):

- ``primary``: ``connect(primary)``, no replicas;
- ``standby``: ``connect(primary, replicas=[standby])``, reads at the level given
  (``--level``, default Bounded): they go to the standby;
- ``spread``: the same with ``ReplicaPolicy(read_primary=True)``: reads alternate between
  primary and standby.

Each round runs every configuration at every client count for ``--seconds`` (the order of
configurations rotates between rounds); printed: QPS per round, the median over rounds, and
the ratio to ``primary`` per round and its median. Then the single-client latency of each
consistency level on the ``standby`` configuration, and recall@10 of every configuration
against the dataset's ground truth (recomputed exactly when ``--rows`` takes a subset).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vecpg  # noqa: E402
from vecpg.localcluster import LocalCluster  # noqa: E402
from vecpg.replicas import ReplicaPolicy  # noqa: E402

DEV_DATASET = ROOT.parent / "shared" / "datasets" / "wordnet-minilm-384-angular.hdf5"
K = 10
SEARCH = {"params": {"ef": 64}}


def load(path: Path, rows: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        train = np.asarray(f["train"][:rows], dtype=np.float32)
        test = np.asarray(f["test"][:queries], dtype=np.float32)
        if rows >= f["train"].shape[0]:
            truth = np.asarray(f["neighbors"][:queries, :K])
        else:  # the file's neighbours are of all rows: the subset's exact top k
            sims = test @ train.T
            truth = np.argsort(-sims, axis=1, kind="stable")[:, :K]
    return train, test, truth


def qps(client: vecpg.Client, queries: np.ndarray, threads: int, seconds: float,
        level: str) -> float:
    """Searches per second of ``threads`` threads for ``seconds``, one query a call."""
    stop = time.monotonic() + seconds
    counts = [0] * threads
    errors: list[BaseException] = []

    def work(t: int) -> None:
        i = t * 97
        n = 0
        try:
            while time.monotonic() < stop:
                client.search("docs", [queries[i % len(queries)]], limit=K,
                              search_params=SEARCH, consistency_level=level)
                i += 1
                n += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        counts[t] = n

    t0 = time.monotonic()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    if errors:
        raise RuntimeError(f"{len(errors)} searches failed: {errors[0]!r}")
    return sum(counts) / (time.monotonic() - t0)


def recall(client: vecpg.Client, queries: np.ndarray, truth: np.ndarray, level: str) -> float:
    got = 0
    for q, want in zip(queries, truth):
        ids = client.search("docs", [q], limit=K, search_params=SEARCH,
                            consistency_level=level)[0].ids
        got += len(set(ids) & {int(x) for x in want})
    return got / (K * len(queries))


def latency_ms(client: vecpg.Client, queries: np.ndarray, level: str, n: int = 300) -> float:
    spent = []
    for i in range(n):
        t0 = time.perf_counter()
        client.search("docs", [queries[i % len(queries)]], limit=K, search_params=SEARCH,
                      consistency_level=level)
        spent.append((time.perf_counter() - t0) * 1000)
    return statistics.median(spent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, default=DEV_DATASET)
    ap.add_argument("--rows", type=int, default=55000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--level", default="Bounded")
    ap.add_argument("--pg-version", type=int, default=18)
    a = ap.parse_args()
    threads = [int(x) for x in a.clients.split(",")]
    train, test, truth = load(a.dataset, a.rows, a.queries)
    print(f"dataset {a.dataset.name}: {len(train)} rows x {train.shape[1]}, "
          f"{len(test)} queries; Postgres {a.pg_version}, 1 standby, same machine", flush=True)
    with LocalCluster(standbys=1, pg_version=a.pg_version) as cluster:
        t0 = time.monotonic()
        primary = vecpg.connect(cluster.primary.dsn, pool_size=max(threads) + 2)
        primary.create_collection("docs", dimension=train.shape[1], metric_type="COSINE")
        for s in range(0, len(train), 5000):
            primary.insert("docs", {"id": np.arange(s, min(s + 5000, len(train))),
                                    "vector": train[s:s + 5000]})
        print(f"loaded in {time.monotonic() - t0:.1f} s", flush=True)
        t0 = time.monotonic()
        primary.create_index("docs", field_name="vector", index_type="HNSW",
                             params={"M": 16, "efConstruction": 64})
        cluster.wait_caught_up(timeout=600)
        print(f"HNSW built (and replayed) in {time.monotonic() - t0:.1f} s", flush=True)
        standby_dsn = cluster.standbys[0].dsn
        configs: dict[str, vecpg.Client] = {
            "primary": primary,
            "standby": vecpg.connect(cluster.primary.dsn, replicas=[standby_dsn],
                                     pool_size=max(threads) + 2),
            "spread": vecpg.connect(cluster.primary.dsn, replicas=[standby_dsn],
                                    pool_size=max(threads) + 2,
                                    replica_policy=ReplicaPolicy(read_primary=True)),
        }
        names = list(configs)
        for c in configs.values():  # warm: plans, the index's pages on both servers
            qps(c, test, 2, 1.0, a.level)
        got: dict[tuple[str, int], list[float]] = {}
        for r in range(a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for t in threads:
                for name in order:
                    got.setdefault((name, t), []).append(
                        qps(configs[name], test, t, a.seconds, a.level))
            print(f"round {r + 1}: " + "  ".join(
                f"{n}@{t}={got[(n, t)][-1]:.0f}" for t in threads for n in names), flush=True)
        print(f"\nsearch QPS (limit {K}, ef 64, level {a.level}; median of {a.rounds} rounds;"
              " ratio to primary: median of per-round ratios)")
        print(f"{'clients':>7} " + " ".join(f"{n:>10}" for n in names) + "   "
              + " ".join(f"{n + '/primary':>16}" for n in names[1:]))
        for t in threads:
            row = [statistics.median(got[(n, t)]) for n in names]
            ratios = [statistics.median(x / y for x, y in zip(got[(n, t)], got[("primary", t)]))
                      for n in names[1:]]
            print(f"{t:>7} " + " ".join(f"{v:>10.0f}" for v in row) + "   "
                  + " ".join(f"{v:>16.2f}" for v in ratios))
        print("\nreads served (primary, standby) per configuration:")
        for name, c in configs.items():
            st = c.replica_status()
            print(f"  {name:>8}: " + ", ".join(f"{s['role']} {s['reads']}" for s in st))
        print("\nsingle-client median latency per consistency level (standby config, ms):")
        sb = configs["standby"]
        for level in ("Eventually", "Bounded", "Session", "Strong"):
            print(f"  {level:>10}: {latency_ms(sb, test, level):.2f}"
                  f"   (primary alone: {latency_ms(primary, test, level):.2f})")
        print(f"\nrecall@{K} against the ground truth ({len(test)} queries):")
        for name, c in configs.items():
            print(f"  {name:>8}: {recall(c, test, truth, a.level):.4f}")
        for c in configs.values():
            c.close()


if __name__ == "__main__":
    main()
