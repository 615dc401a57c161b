"""What row-level tenancy costs: a tenant's search against the owner's same search with the
tenant filter spelled out, side by side in alternating rounds on one embedded server.

    python scripts/bench_tenants.py [--rows 50000] [--dim 64] [--tenants 10] [--rounds 4]

Prints per-query milliseconds, recall@10 against numpy over the tenant's rows, and the
tenant/owner ratio, for the plan the planner picks and for an exact search.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid

import numpy as np
import psycopg

import vecpg
from vecpg.server import embedded_dsn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--tenants", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    dsn = embedded_dsn(tempfile.mkdtemp(prefix="vecpg-bench-tenants-"), temporary=True)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(50, a.dim)) * 2
    x = (centers[rng.integers(0, 50, a.rows)] + rng.normal(size=(a.rows, a.dim))
         ).astype(np.float32)
    tenant_of = rng.integers(0, a.tenants, a.rows)
    queries = (centers[rng.integers(0, 50, 100)] + rng.normal(size=(100, a.dim))
               ).astype(np.float32)
    role = "bench_" + uuid.uuid4().hex[:6]
    with vecpg.connect(dsn) as owner:
        s = owner.create_schema()
        s.add_field("id", vecpg.DataType.INT64, is_primary=True)
        s.add_field("tenant", vecpg.DataType.VARCHAR, max_length=16)
        s.add_field("vector", vecpg.DataType.FLOAT_VECTOR, dim=a.dim)
        owner.create_collection("d", schema=s)
        print(f"loading {a.rows} x {a.dim}, {a.tenants} tenants ...", flush=True)
        owner.insert("d", {"id": np.arange(a.rows), "tenant": [f"t{t}" for t in tenant_of],
                           "vector": x})
        print("building HNSW ...", flush=True)
        owner.create_index("d", field_name="vector", index_type="HNSW", metric_type="L2",
                           params={"M": 16, "efConstruction": 64})
        owner.enable_tenancy("d", "tenant")
        with owner.connection() as c:
            c.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'bench'").format(
                psycopg.sql.Identifier(role)))
            c.execute("ANALYZE d")
        owner.grant_tenant("d", role, ["t3"])
        own = np.flatnonzero(tenant_of == 3)
        truth = [set(own[np.argsort(((x[own] - q) ** 2).sum(1))[:10]].tolist())
                 for q in queries]
        tdsn = psycopg.conninfo.make_conninfo(dsn, user=role, password="bench")
        with vecpg.connect(tdsn) as tenant:
            def run(client: vecpg.Client, **kw: object) -> tuple[float, float]:
                t0 = time.perf_counter()
                got = [client.search("d", [q], limit=10, **kw)[0] for q in queries]  # type: ignore[arg-type]
                ms = (time.perf_counter() - t0) * 1000 / len(queries)
                return ms, float(np.mean([len({h.id for h in g} & t) / 10
                                          for g, t in zip(got, truth)]))
            print("plans: owner", owner.explain("d", filter="tenant == 't3'")["strategy"],
                  "| tenant", tenant.explain("d")["strategy"])
            for label, kw in (("planned", {}), ("exact", {"strategy": "exact"})):
                for r in range(a.rounds):
                    o = run(owner, filter="tenant == 't3'", **kw)
                    t = run(tenant, **kw)
                    print(f"{label} round {r}: owner+filter {o[0]:.2f} ms (recall {o[1]:.3f})"
                          f" | tenant {t[0]:.2f} ms (recall {t[1]:.3f}) | ratio "
                          f"{t[0] / o[0]:.2f}", flush=True)
        with owner.connection() as c:
            c.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
            c.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


if __name__ == "__main__":
    main()
