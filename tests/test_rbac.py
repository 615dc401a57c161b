"""Milvus users, roles and privileges on Postgres roles and grants (vecpg.rbac).

Users log in with their own DSNs and do what their roles' grants allow, and nothing more;
describe_role / describe_user / list_* report the grants Postgres holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

import vecpg
from vecpg import rbac

DIM = 4
PW = "first-pw-1"


class Rbac:
    """Calls rbac functions through the admin client's session; remembers what to drop."""

    def __init__(self, dsn: str, client: vecpg.Client) -> None:
        self.dsn, self.client, self.schema = dsn, client, client.schema
        self.tag = uuid.uuid4().hex[:8]
        self.made: list[str] = []

    def __call__(self, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        with self.client._session.lease() as db:
            return fn(db, self.schema, *a, **kw)

    def name(self, base: str) -> str:
        n = f"{base}_{self.tag}"
        self.made.append(n)
        return n

    def user(self, base: str, password: str = PW) -> str:
        n = self.name(base)
        self(rbac.create_user, n, password)
        return n

    def role(self, base: str) -> str:
        n = self.name(base)
        self(rbac.create_role, n)
        return n

    def login(self, user: str, password: str = PW) -> vecpg.Client:
        dsn = psycopg.conninfo.make_conninfo(self.dsn, user=user, password=password)
        return vecpg.connect(dsn, schema=self.schema)


@pytest.fixture
def rb(dsn: str, client: vecpg.Client) -> Iterator[Rbac]:
    r = Rbac(dsn, client)
    client.create_collection("docs", dimension=DIM)
    rng = np.random.default_rng(3)
    client.insert("docs", [{"id": i, "vector": rng.standard_normal(DIM).tolist()}
                           for i in range(20)])
    yield r
    with psycopg.connect(dsn, autocommit=True) as c:
        for n in reversed(r.made):
            if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (n,)).fetchone():
                c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(n)))
                c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(n)))


def _grants(rb: Rbac, role: str) -> set[tuple[str, str, str]]:
    d = rb(rbac.describe_role, role)
    assert d["role"] == role
    for p in d["privileges"]:
        assert p["role_name"] == role and p["db_name"] == rb.schema and p["grantor_name"]
    return {(p["object_type"], p["object_name"], p["privilege"]) for p in d["privileges"]}


def _q() -> list[list[float]]:
    return [[0.1, 0.2, 0.3, 0.4]]


def test_search_granted_insert_denied_then_revoked(rb: Rbac) -> None:
    user, role = rb.user("alice"), rb.role("reader")
    rb(rbac.grant_privilege_v2, role, "Search", "docs")
    rb(rbac.grant_role, user, role)
    with rb.login(user) as alice:
        hits = alice.search("docs", _q(), limit=3)
        assert len(hits[0]) == 3
        assert alice.list_collections() == ["docs"]
        with pytest.raises(vecpg.PermissionDenied):
            alice.insert("docs", [{"id": 100, "vector": [0.0] * DIM}])
    assert rb.client.query("docs", filter="id == 100") == []  # nothing got in
    assert _grants(rb, role) == {("Collection", "docs", "Query"),
                                 ("Collection", "docs", "Search"),
                                 ("Global", "*", "DescribeCollection"),
                                 ("Global", "*", "ShowCollections")}
    assert rb(rbac.describe_user, user) == {"user_name": user, "roles": (role,),
                                            "description": ""}
    assert user in rb(rbac.list_users) and role not in rb(rbac.list_users)
    roles = rb(rbac.list_roles)
    assert roles[:2] == ["admin", "public"] and role in roles and user not in roles

    rb(rbac.revoke_privilege_v2, role, "Search", "docs")
    assert ("Collection", "docs", "Search") not in _grants(rb, role)
    with rb.login(user) as alice:
        assert alice.list_collections() == []  # the catalog shows only readable ones
        with pytest.raises((vecpg.PermissionDenied, vecpg.CollectionNotFound)):
            alice.search("docs", _q(), limit=3)
    rb(rbac.grant_privilege_v2, role, "Search", "docs")
    rb(rbac.revoke_role, user, role)
    assert rb(rbac.describe_user, user)["roles"] == ()
    with rb.login(user) as alice, pytest.raises(
            (vecpg.PermissionDenied, vecpg.CollectionNotFound)):
        alice.search("docs", _q(), limit=3)


def test_write_privileges(rb: Rbac) -> None:
    user, role = rb.user("writer"), rb.role("rw")
    rb(rbac.grant_role, user, role)
    rb(rbac.grant_privilege, role, "Collection", "Insert", "docs")
    with rb.login(user) as w, pytest.raises(vecpg.CollectionNotFound):
        # the catalog shows a role only the collections it may read (see vecpg.rbac)
        w.insert("docs", [{"id": 100, "vector": [1.0] * DIM}])
    rb(rbac.grant_privilege, role, "Collection", "Query", "docs")
    with rb.login(user) as w:
        w.insert("docs", [{"id": 100, "vector": [1.0] * DIM}])
        with pytest.raises(vecpg.PermissionDenied):
            w.delete("docs", ids=[100])
    rb(rbac.grant_privilege_v2, role, "CollectionReadWrite", "docs")
    assert _grants(rb, role) >= {("Collection", "docs", p)
                                 for p in ("Query", "Search", "Insert", "Upsert", "Delete")}
    with rb.login(user) as w:
        w.upsert("docs", [{"id": 100, "vector": [2.0] * DIM}])
        got = w.get("docs", ids=[100], output_fields=["vector"])
        assert got[0]["vector"] == pytest.approx([2.0] * DIM)
        w.delete("docs", ids=[100])
        assert w.get("docs", ids=[100]) == []
    rb(rbac.revoke_privilege, role, "Collection", "Insert", "docs")  # Upsert goes with it
    names = {p for _, _, p in _grants(rb, role)}
    assert "Insert" not in names and "Upsert" not in names and "Delete" in names


def test_wildcard_reaches_later_collections(rb: Rbac) -> None:
    user, role = rb.user("wild"), rb.role("all_read")
    rb(rbac.grant_role, user, role)
    rb(rbac.grant_privilege, role, "Collection", "Query", "*")
    rb.client.create_collection("later", dimension=DIM)
    rb.client.insert("later", [{"id": 1, "vector": [0.5] * DIM}])
    grants = _grants(rb, role)
    assert {("Collection", "*", "Query"), ("Collection", "docs", "Query"),
            ("Collection", "later", "Query")} <= grants
    with rb.login(user) as u:
        assert sorted(u.list_collections()) == ["docs", "later"]
        assert [r["id"] for r in u.query("later", filter="id >= 0")] == [1]
    rb(rbac.revoke_privilege, role, "Collection", "Query", "*")
    assert not {g for g in _grants(rb, role) if g[0] == "Collection"}


def test_create_collection_privilege(rb: Rbac) -> None:
    user, role = rb.user("maker"), rb.role("makers")
    rb(rbac.grant_role, user, role)
    with rb.login(user) as m, pytest.raises(vecpg.PermissionDenied):
        m.create_collection("mine", dimension=DIM)
    rb(rbac.grant_privilege_v2, role, "CreateCollection", "*")
    assert ("Global", "*", "CreateCollection") in _grants(rb, role)
    with rb.login(user) as m:
        m.create_collection("mine", dimension=DIM)
        m.insert("mine", [{"id": 1, "vector": [1.0] * DIM}])
        assert len(m.search("mine", _q(), limit=1)[0]) == 1
        m.drop_collection("mine")  # its owner may
    rb(rbac.revoke_privilege_v2, role, "CreateCollection", "*")
    assert ("Global", "*", "CreateCollection") not in _grants(rb, role)


def test_public_and_admin(rb: Rbac) -> None:
    user = rb.user("anyone")
    rb(rbac.grant_privilege_v2, "public", "Query", "docs")
    try:
        assert ("Collection", "docs", "Query") in _grants(rb, "public")
        with rb.login(user) as u:  # no role of its own: PUBLIC's grants
            assert len(u.query("docs", filter="id < 5")) == 5
    finally:
        rb(rbac.revoke_privilege_v2, "public", "Query", "docs")
    assert ("Collection", "docs", "Query") not in _grants(rb, "public")
    rb(rbac.grant_role, user, "public")  # every role is a member already
    rb(rbac.grant_role, user, "admin")
    assert rb(rbac.describe_user, user)["roles"] == ("admin",)
    with rb.login(user) as u:
        u.insert("docs", [{"id": 200, "vector": [0.0] * DIM}])
    rb(rbac.revoke_role, user, "admin")
    assert rb(rbac.describe_user, user)["roles"] == ()
    assert rb(rbac.describe_role, "admin")["privileges"] == []
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.revoke_role, user, "public")


def test_passwords(rb: Rbac) -> None:
    seen: list[str] = []
    user = rb.name("pw")
    with vecpg.connect(rb.dsn, schema=rb.schema,
                       tracer=lambda q, p: seen.append(f"{q} {p}")) as traced, \
            traced._session.lease() as db:
        rbac.create_user(db, rb.schema, user, PW, description="a tester")
        with pytest.raises(vecpg.PermissionDenied):
            rbac.update_password(db, rb.schema, user, "not-the-pw", "second-pw-2")
        rbac.update_password(db, rb.schema, user, PW, "second-pw-2")
    assert seen and not any(PW in s or "second-pw-2" in s for s in seen)
    assert rb(rbac.describe_user, user)["description"] == "a tester"
    with rb.login(user, "second-pw-2") as u:  # a user with no role may connect
        assert u.list_collections() == []
    with pytest.raises(vecpg.PermissionDenied):  # the first password is no longer it
        rb(rbac.update_password, user, PW, "third-pw-3")
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.update_password, user, "second-pw-2", "short")


def test_drop_user_and_role(rb: Rbac) -> None:
    user, role = rb.user("gone"), rb.role("gone_role")
    rb(rbac.grant_role, user, role)
    rb(rbac.grant_privilege_v2, role, "Query", "docs")
    with pytest.raises(vecpg.InvalidArgument, match="force_drop"):
        rb(rbac.drop_role, role)
    rb(rbac.drop_role, role, force_drop=True)
    assert role not in rb(rbac.list_roles)
    assert rb(rbac.describe_user, user)["roles"] == ()
    rb(rbac.drop_user, user)
    assert user not in rb(rbac.list_users)
    assert rb(rbac.describe_user, user) == {}
    rb(rbac.drop_user, user)  # gone already: no error, as in Milvus
    with pytest.raises(vecpg.NotFound):
        rb(rbac.drop_role, role)
    plain = rb.role("plain")
    rb(rbac.drop_role, plain)  # no privileges: no force needed
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.drop_role, "admin")


def test_errors(rb: Rbac) -> None:
    user, role = rb.user("err"), rb.role("err_role")
    with pytest.raises(vecpg.AlreadyExists):
        rb(rbac.create_user, user, PW)
    with pytest.raises(vecpg.AlreadyExists):
        rb(rbac.create_role, "admin")
    with pytest.raises(vecpg.AlreadyExists):
        rb(rbac.create_role, user)
    with pytest.raises(vecpg.InvalidName):
        rb(rbac.create_role, "pg_mine")
    with pytest.raises(vecpg.InvalidName):
        rb(rbac.create_user, 'x"; DROP TABLE docs; --', PW)
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.create_user, rb.name("short"), "abc")
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.create_user, rb.name("nopw"), None)
    with pytest.raises(vecpg.NotFound):
        rb(rbac.grant_role, user, "no_such_role_x")
    with pytest.raises(vecpg.NotFound):
        rb(rbac.grant_role, "no_such_user_x", role)
    with pytest.raises(vecpg.NotFound):
        rb(rbac.grant_role, role, role)  # a role is not a user
    with pytest.raises(vecpg.NotFound):
        rb(rbac.describe_role, "no_such_role_x")
    with pytest.raises(vecpg.CollectionNotFound):
        rb(rbac.grant_privilege_v2, role, "Search", "no_such_collection")
    with pytest.raises(vecpg.NotFound):
        rb(rbac.grant_privilege_v2, role, "Search", "docs", db_name="no_such_schema_x")
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.grant_privilege_v2, role, "search", "docs")  # case-sensitive, as Milvus
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.grant_privilege, role, "Global", "Search", "*")
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.grant_privilege, role, "Table", "Search", "docs")
    with pytest.raises(vecpg.InvalidArgument):
        rb(rbac.grant_privilege, role, "Global", "CreateCollection", "docs")
    for privilege in ("CreateIndex", "DropIndex", "All", "CreateResourceGroup",
                      "TransferReplica", "CreateDatabase", "CreateOwnership", "FlushAll"):
        with pytest.raises(vecpg.NotSupported) as e:
            rb(rbac.grant_privilege_v2, role, privilege,
               "docs" if privilege.endswith("Index") else "*")
        assert privilege in str(e.value)
    for group in ("CollectionAdmin", "DatabaseReadOnly", "ClusterAdmin"):
        with pytest.raises(vecpg.NotSupported):
            rb(rbac.grant_privilege_v2, role, group, "*")
    with pytest.raises(vecpg.NotSupported):
        rb(rbac.grant_privilege, role, "User", "UpdateUser", "*")
    with pytest.raises(vecpg.NotSupported):
        rb(rbac.grant_privilege_v2, role, "Search", "*", db_name="*")
    with pytest.raises(vecpg.NotSupported, match="role"):
        rb(rbac.create_privilege_group, "g1")
    for fn, a in ((rbac.drop_privilege_group, ("g1",)),
                  (rbac.add_privileges_to_group, ("g1", ["Search"])),
                  (rbac.remove_privileges_from_group, ("g1", ["Search"]))):
        with pytest.raises(vecpg.NotSupported):
            rb(fn, *a)
    groups = {g["privilege_group"]: g["privileges"] for g in rb(rbac.list_privilege_groups)}
    assert "Search" in groups["CollectionReadOnly"]
    assert "Insert" in groups["CollectionReadWrite"]
    assert rb(rbac.describe_role, role)["privileges"] == []  # nothing was granted on the way


def test_plain_sql_grants_are_reported(rb: Rbac) -> None:
    role = rb.role("by_sql")
    with rb.client.connection() as c:
        c.execute(sql.SQL("GRANT SELECT, DELETE ON {} TO {}").format(
            sql.Identifier(rb.schema, "docs"), sql.Identifier(role)))
    assert _grants(rb, role) == {("Collection", "docs", "Query"),
                                 ("Collection", "docs", "Search"),
                                 ("Collection", "docs", "Delete")}
