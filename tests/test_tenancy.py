"""Tenants see only their own rows, by every path.

Two tenant roles log in with their own DSNs to a collection with one vector field per index
kind, beside rows of a third tenant nobody was granted. Every path is tried: searches with
every index kind and strategy, queries, gets, counts, the catalog, and plain SQL on every
table in schema vecpg (companion codes, pending lists and models included).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

import vecpg
from vecpg import companion as cmp

N, DIM = 900, 16
TENANTS = ("alpha", "beta", "gamma")  # gamma is granted to nobody
FIELDS = {  # vector field -> (index type, build params)
    "f_flat": ("FLAT", {}),
    "f_hnsw": ("HNSW", {"M": 8, "efConstruction": 64}),
    "f_ivf": ("IVF_FLAT", {"nlist": 8}),
    "f_sq8": ("IVF_SQ8", {"nlist": 8}),
    "f_pq": ("IVF_PQ", {"nlist": 8, "m": 4}),
    "f_annoy": ("ANNOY", {"n_trees": 4}),
}
BITS = 64  # a binary field with BIN_IVF_FLAT, searched with HAMMING
PASSWORD = "tenant-pw"


class World:
    """The admin client, the data, and one client per tenant role."""

    def __init__(self, dsn: str, schema: str, admin: vecpg.Client, roles: dict[str, str],
                 x: dict[str, np.ndarray], tenant: np.ndarray) -> None:
        self.dsn, self.schema, self.admin, self.roles = dsn, schema, admin, roles
        self.x, self.tenant = x, tenant
        self.marker = {t: f"{t}-{uuid.uuid4().hex[:6]}" for t in TENANTS}

    def dsn_of(self, role: str) -> str:
        return psycopg.conninfo.make_conninfo(self.dsn, user=role, password=PASSWORD)

    def own(self, t: str) -> set[int]:
        return {int(i) for i in np.flatnonzero(self.tenant == t)}


def _admin_sql(dsn: str, stmt: sql.Composable) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(stmt)


@pytest.fixture(scope="module")
def world(dsn: str, drop_schema: Any) -> Iterator[World]:
    tag = uuid.uuid4().hex[:6]
    schema = f"ten_{tag}"
    roles = {"alpha": f"alpha_{tag}", "beta": f"beta_{tag}"}
    _admin_sql(dsn, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for r in roles.values():
        _admin_sql(dsn, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(r), sql.Literal(PASSWORD)))
    rng = np.random.default_rng(7)
    tenant = np.array([TENANTS[i % 3] for i in range(N)])
    x = {f: rng.standard_normal((N, DIM)).astype(np.float32) for f in FIELDS}
    x["bits"] = rng.integers(0, 2, (N, BITS)).astype(bool)
    admin = vecpg.connect(dsn, schema=schema)
    try:
        s = admin.create_schema()
        s.add_field("id", vecpg.DataType.INT64, is_primary=True)
        s.add_field("tenant", vecpg.DataType.VARCHAR, max_length=32)
        for f in FIELDS:
            s.add_field(f, vecpg.DataType.FLOAT_VECTOR, dim=DIM)
        s.add_field("bits", vecpg.DataType.BINARY_VECTOR, dim=BITS)
        admin.create_collection("docs", schema=s)
        w = World(dsn, schema, admin, roles, x, tenant)
        admin.insert("docs", {"id": np.arange(N), "tenant": [w.marker[t] for t in tenant],
                              **{f: x[f] for f in FIELDS},
                              "bits": [np.packbits(b).tobytes() for b in x["bits"]]})
        for f, (kind, params) in FIELDS.items():
            admin.create_index("docs", field_name=f, index_type=kind, metric_type="L2",
                               params=params, index_name=f)
        admin.create_index("docs", field_name="bits", index_type="BIN_IVF_FLAT",
                           metric_type="HAMMING", params={"nlist": 8}, index_name="bits")
        admin.create_collection("private", dimension=DIM)
        admin.insert("private", [{"id": 1, "vector": x["f_flat"][0]}])
        admin.enable_tenancy("docs", "tenant")
        admin.grant_tenant("docs", roles["alpha"], [w.marker["alpha"]], write=True)
        admin.grant_tenant("docs", roles["beta"], w.marker["beta"])
        with admin.connection() as c:
            c.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, "docs")))
        yield w
    finally:
        admin.close()
        drop_schema(dsn, schema)
        with vecpg.connect(dsn) as c, c.connection() as conn:
            conn.execute("DELETE FROM vecpg.collections WHERE schema_name = %s", (schema,))
        for r in roles.values():
            _admin_sql(dsn, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(r)))
            _admin_sql(dsn, sql.SQL("DROP ROLE {}").format(sql.Identifier(r)))


@pytest.fixture(scope="module")
def tenants(world: World) -> Iterator[dict[str, vecpg.Client]]:
    clients = {t: vecpg.connect(world.dsn_of(r), schema=world.schema)
               for t, r in world.roles.items()}
    yield clients
    for c in clients.values():
        c.close()


def _exact_ids(world: World, field: str, q: np.ndarray, allowed: set[int], k: int) -> list[int]:
    idx = np.array(sorted(allowed))
    if field == "bits":
        d = (world.x["bits"][idx] != q).sum(axis=1)
    else:
        d = ((world.x[field][idx] - q) ** 2).sum(axis=1)
    return [int(i) for i in idx[np.argsort(d, kind="stable")[:k]]]


def _query(world: World, field: str, i: int) -> Any:
    if field == "bits":
        return np.packbits(world.x["bits"][i]).tobytes()
    return world.x[field][i] + 0.01


@pytest.mark.parametrize("field", [*FIELDS, "bits"])
def test_searches_return_only_own_rows_with_every_index(world: World,
                                                        tenants: dict[str, vecpg.Client],
                                                        field: str) -> None:
    kind = FIELDS[field][0] if field in FIELDS else "BIN_IVF_FLAT"
    for t, client in tenants.items():
        own = world.own(t)
        for strategy in (None, "exact", kind.lower(), "companion"):
            hits_all, recall = [], []
            for i in (0, 1, 2, 3, 50, 51):  # queries near rows of every tenant
                try:
                    hits = client.search("docs", [_query(world, field, i)], limit=10,
                                         anns_field=field, strategy=strategy,
                                         output_fields=["tenant"])[0]
                except vecpg.InvalidArgument:
                    assert strategy not in (None, "exact")  # a strategy this role lacks
                    continue
                hits_all += hits
                want = _exact_ids(world, field, (world.x["bits"][i] if field == "bits"
                                                 else world.x[field][i] + 0.01), own, 10)
                got = [h["id"] for h in hits]
                recall.append(len(set(got) & set(want)) / 10)
                if strategy == "exact" and field != "bits":
                    assert got == want
            assert all(h["id"] in own for h in hits_all), (t, field, strategy)
            assert all(h.entity["tenant"] == world.marker[t] for h in hits_all)
            if recall:
                assert np.mean(recall) >= 0.9, (t, field, strategy, recall)


def test_query_get_count_and_iterate_see_only_own_rows(world: World,
                                                       tenants: dict[str, vecpg.Client]) -> None:
    for t, client in tenants.items():
        own = world.own(t)
        rows = client.query("docs", filter="id >= 0", output_fields=["id", "tenant"],
                            limit=N)
        assert {r["id"] for r in rows} == own
        assert client.count("docs") == len(own)
        assert {r["id"] for r in client.get("docs", ids=list(range(N)))} == own
        other = sorted(set(range(N)) - own)[:20]
        assert client.get("docs", ids=other) == []
        assert client.query("docs", filter=f"tenant == '{world.marker['gamma']}'") == []
        assert client.get_collection_stats("docs")["row_count"] <= N


def test_catalog_shows_only_collections_the_role_may_read(world: World,
                                                          tenants: dict[str, vecpg.Client]
                                                          ) -> None:
    assert world.admin.list_collections() == ["docs", "private"]
    for client in tenants.values():
        assert client.list_collections() == ["docs"]
        assert not client.has_collection("private")
        with pytest.raises(vecpg.CollectionNotFound):
            client.search("private", [world.x["f_flat"][0]], limit=1)


def _visible_rows(conn: psycopg.Connection, table: str) -> list[tuple[Any, ...]] | None:
    """The rows ``conn``'s role reads of vecpg.<table>; None if it may not read it."""
    try:
        return conn.execute(sql.SQL("SELECT * FROM {}").format(
            sql.Identifier("vecpg", table))).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return None


def test_plain_sql_on_every_vecpg_table_shows_no_other_tenant(world: World,
                                                              tenants: dict[str, vecpg.Client]
                                                              ) -> None:
    with world.admin.connection() as c:
        tables = [r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'vecpg' ORDER BY 1")]
        companions = [r[0] for r in c.execute(
            "SELECT id FROM vecpg.indexes WHERE schema_name = %s AND index_type IN "
            "('IVF_SQ8', 'IVF_PQ', 'ANNOY')", (world.schema,))]
        everything = {t: len(_visible_rows(c, t) or []) for t in tables}
    codes = [t for t in tables if t.startswith("cmp_") and any(
        t.startswith(f"cmp_{i}_") for i in companions)]
    assert len(codes) >= 2 * len(companions)  # each has its codes and its pending list
    assert everything["index_model_parts"] > 0 and all(everything[t] > 0 for t in codes
                                                       if not t.endswith("_pending"))
    # first with the grants grant_tenant gives, then with SELECT on every table of schema
    # vecpg (as the README's read-only role recipe grants): policies, not grants, hold
    for (t, role), everything_granted in [(tr, g) for g in (False, True)
                                          for tr in world.roles.items()]:
        if everything_granted:
            _admin_sql(world.dsn, sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA vecpg TO {}")
                       .format(sql.Identifier(role)))
        others = [world.marker[o] for o in TENANTS if o != t]
        with psycopg.connect(world.dsn_of(role), autocommit=True) as conn:
            for table in tables:
                rows = _visible_rows(conn, table)
                if rows is None:
                    assert not everything_granted
                    continue
                if table.startswith("cmp_") or table.startswith("index_model"):
                    assert rows == [], (role, table)  # codes and models: every row's
                text = repr(rows)
                assert not any(m in text for m in others), (role, table)
            mine = conn.execute(sql.SQL("SELECT id, tenant FROM {}").format(
                sql.Identifier(world.schema, "docs"))).fetchall()
            assert {r[0] for r in mine} == world.own(t)
            assert {r[1] for r in mine} == {world.marker[t]}
            # Postgres hides the column statistics (most common values) from it as well
            assert conn.execute("SELECT count(*) FROM pg_stats WHERE schemaname = %s",
                                (world.schema,)).fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM vecpg.tenants").fetchone() == (1,)


def test_tenant_writes_stay_in_its_own_rows(world: World,
                                            tenants: dict[str, vecpg.Client]) -> None:
    alpha, beta = tenants["alpha"], tenants["beta"]
    before = world.admin.count("docs")
    new = {"id": [N + 1, N + 2], "tenant": [world.marker["alpha"]] * 2,
           **{f: world.x[f][:2] for f in FIELDS},
           "bits": [np.packbits(b).tobytes() for b in world.x["bits"][:2]]}
    alpha.insert("docs", new)
    assert alpha.count("docs") == len(world.own("alpha")) + 2
    assert beta.get("docs", ids=[N + 1, N + 2]) == []
    # another tenant's value, a read-only tenant, another tenant's key: refused, nothing kept
    with pytest.raises(vecpg.PermissionDenied):
        alpha.insert("docs", {**new, "id": [N + 3, N + 4],
                              "tenant": [world.marker["alpha"], world.marker["beta"]]})
    with pytest.raises(vecpg.PermissionDenied):
        beta.insert("docs", {**new, "id": [N + 5, N + 6], "tenant": [world.marker["beta"]] * 2})
    beta_id = min(world.own("beta"))
    with pytest.raises(vecpg.VecpgError):
        alpha.upsert("docs", {**{k: v[:1] for k, v in new.items()}, "id": [beta_id]})
    alpha.delete("docs", ids=sorted(world.own("beta")))  # not its rows: nothing happens
    assert world.admin.count("docs") == before + 2
    assert beta.count("docs") == len(world.own("beta"))
    # alpha's rows went to the companions' pending lists (it may not write codes) even
    # when it sets the flag the API uses to say it encodes rows itself
    with alpha.connection() as c:
        ids = [r[0] for r in c.execute(
            "SELECT id FROM vecpg.indexes WHERE schema_name = %s AND index_type IN "
            "('IVF_SQ8', 'IVF_PQ', 'ANNOY')", (world.schema,))]
        with c.transaction():
            for i in ids:
                c.execute("SELECT set_config(%s, 'on', true)", (f"vecpg.encoding_{i}",))
            c.execute(sql.SQL("INSERT INTO {} (id, tenant, {}) SELECT %s, %s, {}").format(
                sql.Identifier(world.schema, "docs"),
                sql.SQL(", ").join(map(sql.Identifier, [*FIELDS, "bits"])),
                sql.SQL(", ").join(sql.SQL("%s") for _ in [*FIELDS, "bits"])),
                [N + 7, world.marker["alpha"], *[world.x[f][0] for f in FIELDS],
                 "".join("1" if b else "0" for b in world.x["bits"][0])])
    with world.admin.connection() as c:
        for i in ids:
            pending = {r[0] for r in c.execute(sql.SQL("SELECT pk FROM {}").format(
                cmp._ident(i, "pending")))}
            assert {N + 1, N + 2, N + 7} <= pending
    # and the admin's companion searches find them (the pending rows are scanned exactly)
    for f in ("f_sq8", "f_pq", "f_annoy"):
        hits = world.admin.search("docs", [world.x[f][0]], limit=3, anns_field=f,
                                  strategy="companion")[0]
        assert {N + 1, N + 7} <= {h["id"] for h in hits}
    world.admin.delete("docs", ids=[N + 1, N + 2, N + 7])


def test_grants_are_typed_and_revocable(world: World, tenants: dict[str, vecpg.Client]) -> None:
    admin = world.admin
    assert admin.list_tenants("docs") == {world.roles["alpha"]: [world.marker["alpha"]],
                                          world.roles["beta"]: [world.marker["beta"]]}
    with pytest.raises(vecpg.NotFound):
        admin.grant_tenant("docs", "no_such_role_x", ["a"])
    with pytest.raises(vecpg.InvalidArgument):
        admin.grant_tenant("docs", world.roles["beta"], [])
    with pytest.raises(vecpg.InvalidArgument):
        admin.grant_tenant("private", world.roles["beta"], ["a"])  # no tenants there
    with pytest.raises(vecpg.SchemaError):
        admin.enable_tenancy("private", "vector")
    with admin.connection() as c:
        me = c.execute("SELECT current_user").fetchone()[0]
    with pytest.raises(vecpg.InvalidArgument, match="sees every row"):
        admin.revoke_tenant("docs", me)  # the owner: it would lose its own rights
    # beta also gets gamma's rows, then loses them again
    admin.grant_tenant("docs", world.roles["beta"], [world.marker["gamma"]])
    beta = vecpg.connect(world.dsn_of(world.roles["beta"]), schema=world.schema)
    try:
        assert beta.count("docs") == len(world.own("beta")) + len(world.own("gamma"))
        admin.revoke_tenant("docs", world.roles["beta"], [world.marker["gamma"]])
        assert beta.count("docs") == len(world.own("beta"))
    finally:
        beta.close()



def test_planner_weighs_the_tenants_share(world: World, tenants: dict[str, vecpg.Client]) -> None:
    """A tenant's search is planned for its share of the rows (a third here), and never
    through a companion index (whose codes and model it may not read)."""
    for f, (kind, _) in FIELDS.items():
        e = tenants["alpha"].explain("docs", anns_field=f)
        assert e["filtered"] and abs(e["selectivity"] - 1 / 3) < 0.1, (f, e["selectivity"])
        if kind in ("IVF_SQ8", "IVF_PQ", "ANNOY"):
            assert e["index"] is None and e["strategy"] in ("exact", "filter_first")
        elif kind != "FLAT":
            assert e["index"]["type"] == kind
    assert not world.admin.explain("docs", anns_field="f_hnsw")["filtered"]
