"""Tenants: roles that see only their own rows of a collection, by every path.

A collection with tenants has a *tenant field* (a scalar field; a partition key suits) and
a row-level security policy on its table: a role that is not the table's owner (nor a
superuser or BYPASSRLS role) reads and writes only rows whose tenant field holds a value
granted to it, or to a role it is a member of, in ``vecpg.tenants``. Everything else
follows from Postgres' own checks and vecpg's policies (``sql/004_row_security.sql``):

- searches, queries, gets and counts see only the tenant's rows (the policy applies to
  every statement, with any index; the planner is told the tenant's values, so it weighs
  their share of the rows);
- companion codes, pending lists and models are readable only by roles that see every
  row, so a tenant's searches on a companion-indexed field run exactly over its own rows
  (through the tenant field's index), and its writes go to the pending list;
- the catalog shows a role only the collections it may read.

Roles themselves are Postgres' (``CREATE ROLE alice LOGIN``); this module grants them
what a tenant needs and records which values are theirs.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from . import args
from .catalog import CollectionInfo, set_properties
from .errors import InvalidArgument, NotFound, SchemaError
from .rows import key_sequence
from .schema import DataType
from .session import Db

POLICY = "vecpg_tenant"
# what a tenant may read of vecpg's own tables (their policies show it only its share; the
# schema revision, so that connect() sees it has nothing to migrate)
READABLE = ("alembic_version", "collections", "indexes", "partitions", "tenants", "aliases",
            "databases")


def _check_field(info: CollectionInfo, field_name: Any) -> str:
    name = args.name(field_name, "tenant field")
    f = info.schema.field(name)
    if not (f.dtype.is_integer or f.dtype is DataType.VARCHAR):
        raise SchemaError(f"the tenant field must be an integer or VARCHAR field; {name!r} is "
                          f"{f.dtype.name}")
    return name


def _array_type(info: CollectionInfo, field_name: str) -> sql.SQL:
    return sql.SQL("bigint[]" if info.schema.field(field_name).dtype.is_integer else "text[]")


def enable(db: Db, info: CollectionInfo, field_name: Any) -> None:
    """Give the collection tenants, told apart by ``field_name`` (in the caller's
    transaction): row-level security on, the tenant policy, and an index on the field."""
    name = _check_field(info, field_name)
    col = sql.Identifier(name)
    mine = sql.SQL("{} = ANY ((SELECT vecpg.my_tenants({}::regclass))::{})").format(
        col, sql.Literal(info.table.as_string(db.raw)), _array_type(info, name))
    db.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(info.table))
    db.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY),
                                                               info.table))
    # FOR ALL: a tenant reads, updates and deletes only its rows, and writes only its values
    db.execute(sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
        sql.Identifier(POLICY), info.table, mine, mine))
    db.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
        sql.Identifier(f"{info.name}_{name}_tenant"[:63]), info.table, col))
    set_properties(db, info.schema_name, info.name, {**info.properties, "tenant_field": name})


def disable(db: Db, info: CollectionInfo) -> None:
    """Take the tenants away: the policy and grants recorded go; row-level security goes
    too unless other policies remain on the table."""
    if not info.tenant_field:
        raise InvalidArgument(f"collection {info.name!r} has no tenants")
    for role in list_grants(db, info):
        revoke(db, info, role, None)
    db.execute("DELETE FROM vecpg.tenants WHERE schema_name = %s AND collection = %s",
               (info.schema_name, info.name))  # grants of roles dropped since
    db.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY),
                                                               info.table))
    others = db.value("SELECT count(*) FROM pg_policy WHERE polrelid = %s::regclass",
                      (info.table.as_string(db.raw),))
    if not others:
        db.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(info.table))
    props = {k: v for k, v in info.properties.items() if k != "tenant_field"}
    set_properties(db, info.schema_name, info.name, props)


def _role(db: Db, info: CollectionInfo, role: Any) -> tuple[int, sql.Identifier]:
    """The OID of an existing role that row-level security applies to, and its name as an
    identifier (granting to, or revoking from, the table's owner would change nothing it
    sees, and revoking would take the owner's own rights away)."""
    name = args.text(role, "role", optional=False)
    row = db.execute(
        "SELECT r.oid, r.rolsuper OR r.rolbypassrls OR pg_has_role(r.oid, c.relowner, 'USAGE')"
        " FROM pg_roles r, pg_class c WHERE r.rolname = %s AND c.oid = %s::regclass",
        (name, info.table.as_string(db.raw))).fetchone()
    if row is None:
        raise NotFound(f"role {name!r} does not exist (create it first: CREATE ROLE ... LOGIN)")
    if row[1]:
        raise InvalidArgument(f"role {name!r} sees every row of {info.name!r} (it owns the "
                              "table, is a superuser or has BYPASSRLS): tenants are other roles")
    return int(row[0]), sql.Identifier(name)


def _values(info: CollectionInfo, values: Any) -> list[str]:
    """Tenant values checked against the tenant field's type, as stored (text)."""
    assert info.tenant_field is not None
    f = info.schema.field(info.tenant_field)
    if isinstance(values, (str, int)) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise InvalidArgument(f"tenant values must be a non-empty list, got {values!r}")
    out = []
    for v in values:
        if f.dtype.is_integer:
            out.append(str(args.integer(v, "a tenant value", -(1 << 63), (1 << 63) - 1)))
        else:
            out.append(args.text(v, "a tenant value"))
    return out


def grant(db: Db, info: CollectionInfo, role: Any, values: Any, *, write: bool) -> None:
    """Let ``role`` see (and with ``write``, insert, update and delete) the collection's
    rows whose tenant field holds one of ``values``; in the caller's transaction."""
    if not info.tenant_field:
        raise InvalidArgument(f"collection {info.name!r} has no tenants; "
                              "call enable_tenancy first")
    (oid, r), vals = _role(db, info, role), _values(info, values)
    # grants of dropped roles go, before a new role could be given a dropped one's OID
    db.execute("DELETE FROM vecpg.tenants WHERE role NOT IN (SELECT oid FROM pg_roles)")
    db.executemany("INSERT INTO vecpg.tenants (schema_name, collection, role, value)"
                   " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                   [(info.schema_name, info.name, oid, v) for v in vals])
    for schema in {"vecpg", info.schema_name}:
        db.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), r))
    for t in READABLE:
        db.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier("vecpg", t), r))
    privileges = "SELECT, INSERT, UPDATE, DELETE" if write else "SELECT"
    db.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privileges), info.table, r))
    seq = key_sequence(db, info)
    if write and seq:  # auto ids are drawn from the key's sequence
        db.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.SQL(seq), r))


def revoke(db: Db, info: CollectionInfo, role: Any, values: Any) -> None:
    """Take ``values`` (None: all) away from ``role``; with none left, its rights on the
    collection's table go too."""
    oid, r = _role(db, info, role)
    if values is None:
        db.execute("DELETE FROM vecpg.tenants WHERE schema_name = %s AND collection = %s"
                   " AND role = %s", (info.schema_name, info.name, oid))
    else:
        db.execute("DELETE FROM vecpg.tenants WHERE schema_name = %s AND collection = %s"
                   " AND role = %s AND value = ANY(%s)",
                   (info.schema_name, info.name, oid, _values(info, values)))
    left = db.value("SELECT count(*) FROM vecpg.tenants WHERE schema_name = %s"
                    " AND collection = %s AND role = %s", (info.schema_name, info.name, oid))
    if not left:
        db.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(info.table, r))


def list_grants(db: Db, info: CollectionInfo) -> dict[str, list[str]]:
    """``{role: [values]}`` of the collection's tenants (those this role may see)."""
    out: dict[str, list[str]] = {}
    for role, value in db.execute(
            "SELECT r.rolname, t.value FROM vecpg.tenants t JOIN pg_roles r ON r.oid = t.role"
            " WHERE t.schema_name = %s AND t.collection = %s ORDER BY 1, 2",
            (info.schema_name, info.name)):
        out.setdefault(str(role), []).append(str(value))
    return out
