"""Users, roles and privileges: MilvusClient's RBAC calls on Postgres roles and grants.

    rbac.create_user(db, "docs", "alice", "s3cret-pw")
    rbac.create_role(db, "docs", "reader")
    rbac.grant_privilege_v2(db, "docs", "reader", "Search", "articles")
    rbac.grant_role(db, "docs", "alice", "reader")

Each function takes a :class:`~vecpg.session.Db` (the caller owns the transaction) and the
schema whose tables are the collections; Postgres keeps every fact, so what a role may do
is what its grants say, also for grants made in plain SQL.

- A Milvus **user** is a Postgres ``LOGIN`` role with a password; a **role** is a
  ``NOLOGIN`` role; ``grant_role`` is ``GRANT role TO user``. Passwords are hashed here
  (libpq's ``PQencryptPasswordConn``, as psql's ``\\password`` does), so neither the tracer
  nor the server's statement log sees them in clear.
- A **Milvus database** is a schema: ``db_name`` ``""``, ``None`` or ``"default"`` is the
  client's schema; another name is that schema. ``describe_role`` reports the schema's
  name as ``db_name``.
- Built-in names: **public** is Postgres' ``PUBLIC`` (every role is a member, so
  ``grant_role(u, "public")`` changes nothing and it cannot be revoked); **admin** is a
  superuser (``grant_role(u, "admin")`` is ``ALTER ROLE u SUPERUSER``, and ``describe_user``
  lists ``admin`` for superusers). There is no **root**: the superuser you connect as
  plays it.

Privileges on a collection are privileges on its table (``object_name="*"``: every table
of the schema, and through ``ALTER DEFAULT PRIVILEGES`` the tables the calling role
creates there later):

=============================================================  ==========================
Milvus privilege                                               Postgres
=============================================================  ==========================
Search, Query, Load, Release, GetLoadState, GetLoadingProgress,  ``SELECT``
GetStatistics, IndexDetail, ShowPartitions, HasPartition,
Flush, GetFlushState
Insert, Import                                                 ``INSERT`` (and ``USAGE`` on
                                                               the key's sequence)
Upsert                                                         ``INSERT, UPDATE``
Delete                                                         ``DELETE``
Global CreateCollection                                        ``CREATE`` on the schema,
                                                               writes to vecpg's catalog
Global DescribeCollection, ShowCollections (and the other     the base grant below
metadata reads: ListDatabases, DescribeDatabase, ...)
=============================================================  ==========================

Every grant also gives the *base*: ``USAGE`` on schema ``vecpg`` and on the collections'
schema, and ``SELECT`` on vecpg's catalog (whose row-level security shows a role only the
collections it may read), so the role can connect and find its collections; a new user
gets it in the client's schema, so it can connect before it has a role. Revoking a
privilege leaves the base. Milvus privileges that share a Postgres privilege are granted
and revoked together (revoking Search revokes Query). A write privilege alone finds no
collection: vecpg's catalog shows a role only the collections it may ``SELECT`` (and
Postgres asks for ``SELECT`` on the columns a ``DELETE``'s condition or an upsert's
conflict key reads), so give Query beside Insert, Upsert and Delete, as Milvus'
CollectionReadWrite group does.

``describe_role`` reads the grants back from Postgres' catalogs and names them by
canonical Milvus privilege: ``SELECT`` is Query and Search, ``INSERT`` Insert, ``INSERT``
with ``UPDATE`` Upsert, ``DELETE`` Delete, ``CREATE`` on the schema CreateCollection, a
direct ``USAGE`` on it DescribeCollection and ShowCollections.

Raise :class:`~vecpg.errors.NotSupported`, naming what to do in Postgres instead: what
only a table's owner may do (CreateIndex, DropIndex, CreatePartition, DropPartition,
Compaction, DropCollection, RenameCollection, CollectionAdmin), user and role
administration (``CREATEROLE``), database creation (``CREATEDB``), All (superuser),
cluster and resource-group privileges, and user-defined privilege groups (a Postgres
role holding the privileges is the group: ``create_role`` + ``grant_role``). The built-in
groups CollectionReadOnly and CollectionReadWrite are understood by
``grant_privilege_v2``; CollectionReadWrite gives its data privileges only.

Collections with a companion index (IVF_SQ8, IVF_PQ, ANNOY) keep their codes in schema
``vecpg``, readable only by roles that own the collection's table: a granted role's
searches should use the pgvector indexes or exact search.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors as pgerr
from psycopg import sql

from . import args
from .catalog import exists as collection_exists
from .compat import check_kwargs
from .errors import (
    AlreadyExists,
    CollectionNotFound,
    InvalidArgument,
    InvalidName,
    NotFound,
    NotSupported,
    PermissionDenied,
    ServerError,
)
from .session import Db
from .tenancy import READABLE

PUBLIC, ADMIN = "public", "admin"
BUILTIN_ROLES = (ADMIN, PUBLIC)
PASSWORD_LENGTH = (6, 256)  # Milvus' defaults (proxy.minPasswordLength, maxPasswordLength)
# what creating and dropping one's own collections (and their pgvector indexes) writes
CATALOG_WRITES = ("collections", "partitions", "indexes")


@dataclass(frozen=True)
class _Privilege:
    """One Milvus privilege: its level and the Postgres privileges it is, or why not."""

    level: str  # "Collection" or "Global"
    pg: tuple[str, ...] = ()  # table privileges (Collection) or a marker (Global)
    refusal: str = ""  # non-empty: NotSupported with this advice


_OWNER = ("in Postgres only a table's owner may do this: have the owner do it, or make the "
          "role a member of the owner (GRANT <owner> TO <role>)")
_CLUSTER = "it has no meaning on one Postgres server (no query nodes, replicas or resource groups)"
_ROLES = ("Postgres lets roles with CREATEROLE manage users and roles: ALTER ROLE <role> "
          "CREATEROLE")
_READ = ("Search", "Query", "Load", "Release", "GetLoadState", "GetLoadingProgress",
         "GetStatistics", "IndexDetail", "ShowPartitions", "HasPartition", "Flush",
         "GetFlushState")
_METADATA = ("DescribeCollection", "ShowCollections", "ListDatabases", "DescribeDatabase",
             "ListAliases", "DescribeAlias")

PRIVILEGES: dict[str, _Privilege] = {
    **{p: _Privilege("Collection", ("SELECT",)) for p in _READ},
    "Insert": _Privilege("Collection", ("INSERT",)),
    "Import": _Privilege("Collection", ("INSERT",)),
    "Upsert": _Privilege("Collection", ("INSERT", "UPDATE")),
    "Delete": _Privilege("Collection", ("DELETE",)),
    **{p: _Privilege("Collection", refusal=_OWNER) for p in
       ("CreateIndex", "DropIndex", "CreatePartition", "DropPartition")},
    "Compaction": _Privilege("Collection", refusal="Postgres' VACUUM is run by the table's "
                             "owner (or, from Postgres 17, a role granted MAINTAIN on it)"),
    "LoadBalance": _Privilege("Collection", refusal=_CLUSTER),
    "CreateCollection": _Privilege("Global", ("CREATE",)),
    **{p: _Privilege("Global", ("USAGE",)) for p in _METADATA},
    "All": _Privilege("Global", refusal="Milvus' All is a Postgres superuser: "
                      "grant_role(user, 'admin') makes one (ALTER ROLE <user> SUPERUSER)"),
    **{p: _Privilege("Global", refusal=_OWNER) for p in
       ("DropCollection", "RenameCollection", "CreateAlias", "DropAlias")},
    **{p: _Privilege("Global", refusal=_ROLES) for p in
       ("CreateOwnership", "DropOwnership", "SelectOwnership", "ManageOwnership",
        "UpdateUser", "SelectUser")},
    **{p: _Privilege("Global", refusal="back up and restore roles with pg_dumpall "
                     "--roles-only") for p in ("BackupRBAC", "RestoreRBAC")},
    **{p: _Privilege("Global", refusal=_CLUSTER) for p in
       ("CreateResourceGroup", "UpdateResourceGroups", "DropResourceGroup",
        "DescribeResourceGroup", "ListResourceGroups", "TransferReplica", "TransferNode")},
    "FlushAll": _Privilege("Global", refusal="Postgres makes every commit durable; "
                           "CHECKPOINT (pg_checkpoint role) forces a checkpoint"),
    **{p: _Privilege("Global", refusal="a Milvus database is a schema here: GRANT CREATE ON "
                     "DATABASE <db> TO <role> lets a role create schemas, ALTER ROLE <role> "
                     "CREATEDB databases") for p in
       ("CreateDatabase", "DropDatabase", "AlterDatabase")},
}
_USER_PRIVILEGES = ("UpdateUser", "SelectUser")  # object_type "User" in Milvus' v1 grants

# Milvus' built-in privilege groups that have a Postgres meaning (grant_privilege_v2)
GROUPS: dict[str, tuple[str, ...]] = {
    "CollectionReadOnly": _READ,
    "CollectionReadWrite": (*_READ, "Insert", "Import", "Upsert", "Delete"),
}
_GROUP_REFUSED = {
    "CollectionAdmin": _OWNER,
    **dict.fromkeys(("DatabaseReadOnly", "DatabaseReadWrite", "DatabaseAdmin"),
                    "a Milvus database is a schema here: grant its collections with "
                    "object_name '*' (and CreateCollection), or make the role a member of "
                    "the schema's owner"),
    **dict.fromkeys(("ClusterReadOnly", "ClusterReadWrite", "ClusterAdmin"),
                    "cluster administration in Postgres is a superuser's: "
                    "grant_role(user, 'admin')"),
}
_NO_GROUPS = ("Postgres has no privilege groups apart from roles: create a role holding "
              "the privileges (create_role, grant_privilege_v2) and grant it to users or to "
              "other roles (grant_role)")


# -- names and lookups ---------------------------------------------------------------------

def _name(value: Any, what: str) -> str:
    name = args.name(value, what)
    if name.lower().startswith("pg_"):
        raise InvalidName(f"invalid {what} {name!r}: Postgres reserves names starting "
                          "with 'pg_'")
    return name


def _role_row(db: Db, name: str) -> tuple[int, bool, bool] | None:
    """(oid, can log in, superuser) of a role, None if there is none."""
    row = db.execute("SELECT oid, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s",
                     (name,)).fetchone()
    return None if row is None else (int(row[0]), bool(row[1]), bool(row[2]))


def _user(db: Db, user_name: Any) -> tuple[str, int]:
    """Name and OID of an existing user."""
    name = _name(user_name, "user name")
    row = _role_row(db, name)
    if row is None or not row[1]:
        what = "is a role, not a user (it cannot log in)" if row else "does not exist"
        raise NotFound(f"user {name!r} {what}")
    return name, row[0]


def _existing_user(db: Db, user_name: Any) -> str:
    return _user(db, user_name)[0]


def _grantee(db: Db, role_name: Any) -> tuple[int, sql.Composable, str]:
    """OID (0 for PUBLIC), SQL spelling and name of a role privileges go to."""
    role_name = args.text(role_name, "role name", optional=False)
    if role_name == PUBLIC:
        return 0, sql.SQL("PUBLIC"), PUBLIC
    if role_name == ADMIN:
        raise InvalidArgument("role 'admin' (a superuser) has every privilege already")
    name = _name(role_name, "role name")
    row = _role_row(db, name)
    if row is None:
        raise NotFound(f"role {name!r} does not exist (create_role first)")
    return row[0], sql.Identifier(name), name


def _target_schema(db: Db, schema: str, db_name: Any) -> str:
    """The schema a Milvus database name stands for."""
    if db_name is None or db_name in ("", "default"):
        return schema
    if db_name == "*":
        raise NotSupported("a Milvus database is a schema here: grant in each schema "
                           "(db_name=<schema>), or to all its collections with object_name '*'")
    name = args.name(db_name, "db_name")
    if db.value("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)) is None:
        raise NotFound(f"database (schema) {name!r} does not exist")
    return name


def _privilege(value: Any) -> tuple[str, _Privilege]:
    name = args.text(value, "privilege", optional=False)
    p = PRIVILEGES.get(name)
    if p is None:
        raise InvalidArgument(f"{name!r} is not a Milvus privilege (names are case-sensitive, "
                              "e.g. 'Search', 'Insert', 'CreateCollection')")
    if p.refusal:
        raise NotSupported(f"privilege {name!r} is not supported: {p.refusal}")
    return name, p


# -- users --------------------------------------------------------------------------------

def _password(value: Any, what: str) -> str:
    pw = args.text(value, what, optional=False)
    lo, hi = PASSWORD_LENGTH
    if not lo <= len(pw) <= hi:
        raise InvalidArgument(f"{what} must have {lo}-{hi} characters, got {len(pw)}")
    return pw


def _hashed(db: Db, user: str, password: str) -> sql.Literal:
    """The password as the server stores it (SCRAM or md5, per its password_encryption)."""
    return sql.Literal(db.raw.pgconn.encrypt_password(password.encode(), user.encode())
                       .decode())


def _comment(db: Db, name: str, description: Any) -> None:
    text = args.text(description, "description")
    if text:
        db.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name),
                                                             sql.Literal(text)))


def create_user(db: Db, schema: str, user_name: Any, password: Any,
                description: Any = None) -> None:
    """A user: ``CREATE ROLE <user> LOGIN PASSWORD ...`` (the password hashed here)."""
    name = _name(user_name, "user name")
    pw = _password(password, "password")
    if name in BUILTIN_ROLES or _role_row(db, name) is not None:
        raise AlreadyExists(f"a user or role named {name!r} exists already")
    db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name),
                                                                 _hashed(db, name, pw)))
    _comment(db, name, description)
    _grant_base(db, schema, sql.Identifier(name))  # vecpg.connect() works with no role yet


def _drop(db: Db, name: str, oid: int) -> None:
    """Drop a role with the privileges granted to it (in this database), unless it owns
    something: that must find a new owner first."""
    if name == db.value("SELECT current_user"):
        raise InvalidArgument(f"{name!r} is the role this connection runs as; "
                              "drop it from another one")
    if db.value("SELECT 1 FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass"
                " AND refobjid = %s AND deptype = 'o' LIMIT 1", (oid,)) is not None:
        raise InvalidArgument(f"role {name!r} owns objects: REASSIGN OWNED BY {name} TO "
                              "<another role> (in every database where it owns some) first")
    ident = sql.Identifier(name)
    db.execute(sql.SQL("DROP OWNED BY {}").format(ident))  # its privileges only: owns nothing
    try:
        with db.transaction():
            db.execute(sql.SQL("DROP ROLE {}").format(ident))
    except pgerr.DependentObjectsStillExist as e:
        raise InvalidArgument(f"role {name!r} still holds privileges in another database "
                              f"({e.diag.message_detail or e}): DROP OWNED BY {name} there "
                              "first") from e


def drop_user(db: Db, schema: str, user_name: Any) -> None:
    """Drop a user, with the privileges granted to it directly; no error if there is none
    (as in Milvus)."""
    name = _name(user_name, "user name")
    row = _role_row(db, name)
    if row is None:
        return
    _drop(db, *_user(db, name))


def _scram_matches(stored: str, password: str) -> bool:
    """Whether ``password`` matches a SCRAM-SHA-256 verifier (RFC 5803 format)."""
    try:
        head, keys = stored.removeprefix("SCRAM-SHA-256$").split("$", 1)
        iterations, salt = head.split(":", 1)
        stored_key = base64.b64decode(keys.split(":", 1)[0])
        salt_bytes = base64.b64decode(salt)
        rounds = int(iterations)
    except ValueError:
        return False
    # Postgres SASLprep-normalizes the password when it can (NFKC, for most of it)
    for candidate in {password, unicodedata.normalize("NFKC", password)}:
        salted = hashlib.pbkdf2_hmac("sha256", candidate.encode(), salt_bytes, rounds)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        if hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key):
            return True
    return False


def _password_matches(db: Db, user: str, password: str) -> bool:
    """Whether ``password`` is ``user``'s: from the stored verifier when this role may read
    it (a superuser), else by logging in with it."""
    try:
        with db.transaction():
            stored = db.value("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,))
    except pgerr.InsufficientPrivilege:
        return _can_log_in(db, user, password)
    if stored is None:
        return False
    if stored.startswith("SCRAM-SHA-256$"):
        return _scram_matches(stored, password)
    md5 = "md5" + hashlib.md5((password + user).encode()).hexdigest()
    return hmac.compare_digest(stored, md5)


def _can_log_in(db: Db, user: str, password: str) -> bool:
    params = {k: v for k, v in db.raw.info.get_parameters().items()
              if k in ("host", "hostaddr", "port", "dbname", "sslmode")}
    dsn = psycopg.conninfo.make_conninfo("", **params, user=user, password=password)
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.OperationalError as e:
        if e.sqlstate in ("28P01", "28000"):  # invalid password / authorization
            return False
        raise ServerError(f"could not check the old password by logging in as {user!r}: "
                          f"{e}") from e
    return True


def update_password(db: Db, schema: str, user_name: Any, old_password: Any,
                    new_password: Any) -> None:
    """Change a user's password, if ``old_password`` is its password now."""
    name = _existing_user(db, user_name)
    old = args.text(old_password, "old_password", optional=False)
    new = _password(new_password, "new_password")
    if not _password_matches(db, name, old):
        raise PermissionDenied(f"old_password is not the password of user {name!r}")
    db.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name),
                                                          _hashed(db, name, new)))


def list_users(db: Db, schema: str) -> list[str]:
    """The users (roles that can log in, but Postgres' own ``pg_*``), by name."""
    return [str(r[0]) for r in db.execute(
        "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname NOT LIKE 'pg\\_%%'"
        " ORDER BY rolname")]


def describe_user(db: Db, schema: str, user_name: Any) -> dict[str, Any]:
    """``{"user_name", "roles", "description"}``, pymilvus' shape: the roles it is a direct
    member of (``admin`` first for a superuser); ``{}`` for no such user, as pymilvus."""
    name = _name(user_name, "user name")
    row = _role_row(db, name)
    if row is None or not row[1]:
        return {}
    roles = [str(r[0]) for r in db.execute(
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = %s ORDER BY 1", (row[0],))]
    return {"user_name": name, "roles": tuple(([ADMIN] if row[2] else []) + roles),
            "description": _description(db, row[0])}


def _description(db: Db, oid: int) -> str:
    return str(db.value("SELECT shobj_description(%s, 'pg_authid')", (oid,)) or "")


# -- roles --------------------------------------------------------------------------------

def describe_as(db: Db, role_name: Any, description: Any, what: str) -> None:
    """Set the description of an existing user (``what="user"``) or role: ``COMMENT ON
    ROLE`` (an empty one clears it)."""
    if what == "user":
        name = _existing_user(db, role_name)
    else:
        name = _grantee(db, role_name)[2]
        if name == PUBLIC:
            raise InvalidArgument("role 'public' has no description to change")
    text = args.text(description, "description")
    db.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
        sql.Identifier(name), sql.Literal(text) if text else sql.SQL("NULL")))


def create_role(db: Db, schema: str, role_name: Any, description: Any = None) -> None:
    """A role: ``CREATE ROLE <role> NOLOGIN``."""
    name = _name(role_name, "role name")
    if name in BUILTIN_ROLES or _role_row(db, name) is not None:
        raise AlreadyExists(f"a role or user named {name!r} exists already")
    db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    _comment(db, name, description)


def drop_role(db: Db, schema: str, role_name: Any, force_drop: Any = False) -> None:
    """Drop a role. While it holds privileges, only with ``force_drop`` (which revokes them
    first, as Milvus does); a role that owns objects is never dropped here."""
    force = args.flag(force_drop, "force_drop")
    name = _name(role_name, "role name")
    if name in BUILTIN_ROLES:
        raise InvalidArgument(f"{name!r} is a built-in role; it cannot be dropped")
    row = _role_row(db, name)
    if row is None or row[1]:
        what = "is a user (it can log in): drop_user" if row else "does not exist"
        raise NotFound(f"role {name!r} {what}")
    if not force and db.value(
            "SELECT 1 FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass"
            " AND refobjid = %s AND deptype IN ('a', 'o') LIMIT 1", (row[0],)) is not None:
        raise InvalidArgument(f"role {name!r} holds privileges: revoke them first, or "
                              "drop_role(..., force_drop=True)")
    _drop(db, name, row[0])


def list_roles(db: Db, schema: str) -> list[str]:
    """``admin``, ``public`` and every role that cannot log in (but Postgres' ``pg_*``)."""
    return [*BUILTIN_ROLES, *(str(r[0]) for r in db.execute(
        "SELECT rolname FROM pg_roles WHERE NOT rolcanlogin AND rolname NOT LIKE 'pg\\_%%'"
        " AND rolname NOT IN ('admin', 'public') ORDER BY rolname"))]


def grant_role(db: Db, schema: str, user_name: Any, role_name: Any) -> None:
    """Make a user a member of a role (``admin``: a superuser; ``public``: it is already)."""
    user = _existing_user(db, user_name)
    role_name = args.text(role_name, "role name", optional=False)
    if role_name == PUBLIC:
        return
    if role_name == ADMIN:
        db.execute(sql.SQL("ALTER ROLE {} SUPERUSER").format(sql.Identifier(user)))
        return
    _, role, _ = _grantee(db, role_name)
    db.execute(sql.SQL("GRANT {} TO {}").format(role, sql.Identifier(user)))


def revoke_role(db: Db, schema: str, user_name: Any, role_name: Any) -> None:
    """Take a role away from a user (``admin``: no longer a superuser)."""
    user = _existing_user(db, user_name)
    role_name = args.text(role_name, "role name", optional=False)
    if role_name == PUBLIC:
        raise InvalidArgument("every Postgres role is a member of PUBLIC; it cannot be revoked")
    if role_name == ADMIN:
        db.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(user)))
        return
    _, role, _ = _grantee(db, role_name)
    db.execute(sql.SQL("REVOKE {} FROM {}").format(role, sql.Identifier(user)))


# -- privileges ----------------------------------------------------------------------------

def _grant_base(db: Db, schema: str, to: sql.Composable) -> None:
    """What any granted role needs to connect, see vecpg's catalog and its collections."""
    for s in dict.fromkeys(("vecpg", schema)):
        db.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(s), to))
    tables = sql.SQL(", ").join(sql.Identifier("vecpg", t) for t in READABLE)
    db.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(tables, to))


def _owned_sequences(db: Db, schema: str, collection: str) -> list[sql.Composable]:
    """The sequences of a table's serial or identity columns (auto ids come from them)."""
    rows = db.execute(
        "SELECT s.oid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid"
        " WHERE d.classid = 'pg_class'::regclass AND s.relkind = 'S'"
        " AND d.refobjid = %s::regclass AND d.deptype IN ('a', 'i')",
        (sql.Identifier(schema, collection).as_string(db.raw),)).fetchall()
    return [sql.SQL(r[0]) for r in rows]  # regclass text: quoted by Postgres itself


def _table_privileges(db: Db, schema: str, to: sql.Composable, collection: str,
                      pg: tuple[str, ...], *, grant: bool) -> None:
    verb, prep = ("GRANT", "TO") if grant else ("REVOKE", "FROM")
    privs = sql.SQL(", ").join(sql.SQL(p) for p in pg)  # from PRIVILEGES, never user text
    ident = sql.Identifier(schema)
    if collection == "*":
        stmt = sql.SQL("{} {} ON ALL TABLES IN SCHEMA {} {} {}")
        default = sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} {} {} ON {} {} {}")
        db.execute(stmt.format(sql.SQL(verb), privs, ident, sql.SQL(prep), to))
        db.execute(default.format(ident, sql.SQL(verb), privs, sql.SQL("TABLES"),
                                  sql.SQL(prep), to))
        if "INSERT" in pg:
            db.execute(sql.SQL("{} USAGE ON ALL SEQUENCES IN SCHEMA {} {} {}").format(
                sql.SQL(verb), ident, sql.SQL(prep), to))
            db.execute(default.format(ident, sql.SQL(verb), sql.SQL("USAGE"),
                                      sql.SQL("SEQUENCES"), sql.SQL(prep), to))
        return
    db.execute(sql.SQL("{} {} ON {} {} {}").format(
        sql.SQL(verb), privs, sql.Identifier(schema, collection), sql.SQL(prep), to))
    if "INSERT" in pg:
        for seq in _owned_sequences(db, schema, collection):
            db.execute(sql.SQL("{} USAGE ON SEQUENCE {} {} {}").format(
                sql.SQL(verb), seq, sql.SQL(prep), to))


def _global_privileges(db: Db, schema: str, to: sql.Composable, marker: str, *,
                       grant: bool) -> None:
    verb, prep = ("GRANT", "TO") if grant else ("REVOKE", "FROM")
    if marker == "USAGE":  # metadata reads: the base is all they need
        if grant:
            _grant_base(db, schema, to)
        else:
            db.execute(sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(
                sql.Identifier(schema), to))
        return
    # CreateCollection: tables in the schema, and their catalog rows
    db.execute(sql.SQL("{} CREATE ON SCHEMA {} {} {}").format(
        sql.SQL(verb), sql.Identifier(schema), sql.SQL(prep), to))
    tables = sql.SQL(", ").join(sql.Identifier("vecpg", t) for t in CATALOG_WRITES)
    db.execute(sql.SQL("{} INSERT, UPDATE, DELETE ON {} {} {}").format(
        sql.SQL(verb), tables, sql.SQL(prep), to))
    for seq in _owned_sequences(db, "vecpg", "indexes"):
        db.execute(sql.SQL("{} USAGE ON SEQUENCE {} {} {}").format(
            sql.SQL(verb), seq, sql.SQL(prep), to))


def _apply(db: Db, schema: str, role_name: Any, names: list[str], object_name: Any,
           db_name: Any, *, grant: bool) -> None:
    """Grant or revoke Milvus privileges ``names`` (all of one level) on ``object_name``."""
    _, to, _ = _grantee(db, role_name)
    target = _target_schema(db, schema, db_name)
    level = PRIVILEGES[names[0]].level
    if level == "Global":
        if object_name != "*":
            raise InvalidArgument(f"Global privileges take object_name '*', got {object_name!r}")
        for n in names:
            _global_privileges(db, target, to, PRIVILEGES[n].pg[0], grant=grant)
        return
    collection = "*" if object_name == "*" else args.name(object_name, "collection name")
    if collection != "*" and not collection_exists(db, target, collection):
        raise CollectionNotFound(f"collection {collection!r} does not exist in {target!r}")
    if grant:
        _grant_base(db, target, to)
    pg = tuple(dict.fromkeys(p for n in names for p in PRIVILEGES[n].pg))
    _table_privileges(db, target, to, collection, pg, grant=grant)


def _v1(object_type: Any, privilege: Any) -> str:
    kind = args.text(object_type, "object_type", optional=False)
    name = args.text(privilege, "privilege", optional=False)
    if kind == "User" and name in _USER_PRIVILEGES:
        _privilege(name)  # refused: NotSupported
    if kind not in ("Collection", "Global"):
        raise InvalidArgument(f"object_type must be 'Collection', 'Global' or 'User', "
                              f"got {kind!r}")
    name, p = _privilege(name)
    if p.level != kind:
        raise InvalidArgument(f"{name!r} is a {p.level} privilege, not a {kind} one")
    return name


def grant_privilege(db: Db, schema: str, role_name: Any, object_type: Any, privilege: Any,
                    object_name: Any, db_name: Any = "") -> None:
    """Grant a privilege on a collection (``object_name="*"``: all of them) or, with
    ``object_type="Global"`` and ``object_name="*"``, on the schema."""
    _apply(db, schema, role_name, [_v1(object_type, privilege)], object_name, db_name,
           grant=True)


def revoke_privilege(db: Db, schema: str, role_name: Any, object_type: Any, privilege: Any,
                     object_name: Any, db_name: Any = "") -> None:
    """Revoke what :func:`grant_privilege` granted (and the Milvus privileges that share its
    Postgres privileges)."""
    _apply(db, schema, role_name, [_v1(object_type, privilege)], object_name, db_name,
           grant=False)


def _v2(privilege: Any) -> list[str]:
    name = args.text(privilege, "privilege", optional=False)
    if name in GROUPS:
        return list(GROUPS[name])
    if name in _GROUP_REFUSED:
        raise NotSupported(f"privilege group {name!r} is not supported: {_GROUP_REFUSED[name]}")
    if name not in PRIVILEGES:
        raise InvalidArgument(f"{name!r} is neither a Milvus privilege nor a built-in privilege "
                              f"group vecpg knows ({', '.join(GROUPS)}); {_NO_GROUPS}")
    return [_privilege(name)[0]]


def grant_privilege_v2(db: Db, schema: str, role_name: Any, privilege: Any,
                       collection_name: Any, db_name: Any = None) -> None:
    """Grant a privilege, or a built-in group, on a collection (``"*"``: all); a Global
    privilege takes ``collection_name="*"``."""
    _apply(db, schema, role_name, _v2(privilege), collection_name, db_name, grant=True)


def revoke_privilege_v2(db: Db, schema: str, role_name: Any, privilege: Any,
                        collection_name: Any, db_name: Any = None) -> None:
    """Revoke what :func:`grant_privilege_v2` granted."""
    _apply(db, schema, role_name, _v2(privilege), collection_name, db_name, grant=False)


def _milvus_names(pg: set[str]) -> list[str]:
    """The canonical Milvus privileges a set of table privileges amounts to."""
    out = ["Query", "Search"] if "SELECT" in pg else []
    if "INSERT" in pg:
        out.append("Insert")
        if "UPDATE" in pg:
            out.append("Upsert")
    if "DELETE" in pg:
        out.append("Delete")
    return out


def describe_role(db: Db, schema: str, role_name: Any, db_name: Any = "") -> dict[str, Any]:
    """``{"role", "description", "privileges": [...]}`` as pymilvus returns it, each
    privilege a dict with object_type, object_name, db_name (the schema), role_name,
    privilege and grantor_name, read from Postgres' catalogs."""
    role_name = args.text(role_name, "role name", optional=False)
    if role_name == ADMIN:
        return {"role": ADMIN, "description": "superusers", "privileges": []}
    oid, _, name = _grantee(db, role_name)
    target = _target_schema(db, schema, db_name)
    found: dict[tuple[str, str], tuple[set[str], str]] = {}  # (type, object) -> privs, grantor

    def add(kind: str, obj: str, privilege: str, grantor: Any) -> None:
        privs, _ = found.setdefault((kind, obj), (set(), str(grantor or "")))
        privs.add(privilege)

    for coll, privilege, grantor in db.execute(
            "SELECT c.name, a.privilege_type, g.rolname FROM vecpg.collections c"
            " JOIN pg_class t ON t.oid = vecpg.collection_table(c.schema_name, c.name)"
            " CROSS JOIN LATERAL aclexplode(t.relacl) a"
            " LEFT JOIN pg_roles g ON g.oid = a.grantor"
            " WHERE c.schema_name = %s AND a.grantee = %s", (target, oid)):
        add("Collection", str(coll), privilege, grantor)
    for privilege, grantor in db.execute(
            "SELECT a.privilege_type, g.rolname FROM pg_default_acl d"
            " CROSS JOIN LATERAL aclexplode(d.defaclacl) a"
            " LEFT JOIN pg_roles g ON g.oid = a.grantor"
            " WHERE d.defaclnamespace = %s::regnamespace AND d.defaclobjtype = 'r'"
            " AND a.grantee = %s", (sql.Identifier(target).as_string(db.raw), oid)):
        add("Collection", "*", privilege, grantor)
    for privilege, grantor in db.execute(
            "SELECT a.privilege_type, g.rolname FROM pg_namespace n"
            " CROSS JOIN LATERAL aclexplode(n.nspacl) a"
            " LEFT JOIN pg_roles g ON g.oid = a.grantor"
            " WHERE n.nspname = %s AND a.grantee = %s", (target, oid)):
        add("Global", "*", privilege, grantor)
    out = []
    for (kind, obj), (privs, grantor) in sorted(found.items()):
        if kind == "Global":
            names = (["CreateCollection"] if "CREATE" in privs else []) + (
                ["DescribeCollection", "ShowCollections"] if "USAGE" in privs else [])
        else:
            names = _milvus_names(privs)
        out += [{"object_type": kind, "object_name": obj, "db_name": target,
                 "role_name": name, "privilege": p, "grantor_name": grantor}
                for p in sorted(names)]
    description = "" if oid == 0 else _description(db, oid)
    return {"role": name, "description": description, "privileges": out}


# -- privilege groups ----------------------------------------------------------------------

def list_privilege_groups(db: Db, schema: str) -> list[dict[str, Any]]:
    """The built-in groups vecpg understands, as pymilvus lists groups (user-defined groups
    are not supported: see :func:`create_privilege_group`)."""
    return [{"privilege_group": g, "privileges": privs} for g, privs in GROUPS.items()]


def create_privilege_group(db: Db, schema: str, group_name: Any) -> None:
    """Not supported: a Postgres role is the group (:data:`_NO_GROUPS`)."""
    args.text(group_name, "group_name", optional=False)
    raise NotSupported(_NO_GROUPS)


def drop_privilege_group(db: Db, schema: str, group_name: Any) -> None:
    """Not supported (see :func:`create_privilege_group`)."""
    args.text(group_name, "group_name", optional=False)
    raise NotSupported(_NO_GROUPS)


def add_privileges_to_group(db: Db, schema: str, group_name: Any, privileges: Any) -> None:
    """Not supported (see :func:`create_privilege_group`)."""
    args.text(group_name, "group_name", optional=False)
    raise NotSupported(_NO_GROUPS)


def remove_privileges_from_group(db: Db, schema: str, group_name: Any,
                                 privileges: Any) -> None:
    """Not supported (see :func:`create_privilege_group`)."""
    args.text(group_name, "group_name", optional=False)
    raise NotSupported(_NO_GROUPS)


class RbacMethods:
    """The Client methods of Milvus' users, roles and privileges, on Postgres roles and
    grants (each runs the function of this module of the same name in one transaction)."""

    schema: str

    def _lease(self) -> Any:  # provided by Client
        raise NotImplementedError

    def create_user(self, user_name: str, password: str, timeout: float | None = None,
                    description: str | None = None, **kwargs: Any) -> None:
        """Create a user: a Postgres LOGIN role with that password."""
        check_kwargs("create_user", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            create_user(db, self.schema, user_name, password, description)

    def drop_user(self, user_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop a user (its role)."""
        check_kwargs("drop_user", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            drop_user(db, self.schema, user_name)

    def update_password(self, user_name: str, old_password: str, new_password: str,
                        reset_connection: bool = False, timeout: float | None = None,
                        description: str | None = None, **kwargs: Any) -> None:
        """Change a user's password (``old_password`` must be its password now)."""
        check_kwargs("update_password", {"timeout": timeout, **kwargs})
        args.flag(reset_connection, "reset_connection")
        with self._lease() as db, db.transaction():
            update_password(db, self.schema, user_name, old_password, new_password)

    def update_user(self, user_name: str, description: str, timeout: float | None = None,
                    **kwargs: Any) -> None:
        """Change a user's description (``COMMENT ON ROLE``; empty: none)."""
        check_kwargs("update_user", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            describe_as(db, user_name, description, "user")

    def list_users(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The users (LOGIN roles), by name."""
        check_kwargs("list_users", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            return list_users(db, self.schema)

    def describe_user(self, user_name: str, timeout: float | None = None,
                      **kwargs: Any) -> dict[str, Any]:
        """``{"user_name", "roles", "description"}`` (``{}`` for no such user)."""
        check_kwargs("describe_user", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            return describe_user(db, self.schema, user_name)

    def create_role(self, role_name: str, timeout: float | None = None,
                    description: str | None = None, **kwargs: Any) -> None:
        """Create a role: a Postgres NOLOGIN role."""
        check_kwargs("create_role", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            create_role(db, self.schema, role_name, description)

    def drop_role(self, role_name: str, force_drop: bool = False, timeout: float | None = None,
                  **kwargs: Any) -> None:
        """Drop a role (``force_drop``: even while it holds privileges)."""
        check_kwargs("drop_role", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            drop_role(db, self.schema, role_name, force_drop)

    def alter_role(self, role_name: str, description: str, timeout: float | None = None,
                   **kwargs: Any) -> None:
        """Change a role's description (``COMMENT ON ROLE``; empty: none)."""
        check_kwargs("alter_role", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            describe_as(db, role_name, description, "role")

    def list_roles(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The roles, by name."""
        check_kwargs("list_roles", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            return list_roles(db, self.schema)

    def describe_role(self, role_name: str, timeout: float | None = None,
                      **kwargs: Any) -> dict[str, Any]:
        """The role's privileges, in pymilvus' shape, read back from Postgres' grants."""
        check_kwargs("describe_role", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            out = describe_role(db, self.schema, role_name)
        default = getattr(self, "_default_schema", None)  # Milvus' name for it: "default"
        for p in out.get("privileges", []):
            if p.get("db_name") == default:
                p["db_name"] = "default"
        return out

    def grant_role(self, user_name: str, role_name: str, timeout: float | None = None,
                   **kwargs: Any) -> None:
        """``GRANT role TO user``."""
        check_kwargs("grant_role", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            grant_role(db, self.schema, user_name, role_name)

    def revoke_role(self, user_name: str, role_name: str, timeout: float | None = None,
                    **kwargs: Any) -> None:
        """``REVOKE role FROM user``."""
        check_kwargs("revoke_role", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            revoke_role(db, self.schema, user_name, role_name)

    def grant_privilege(self, role_name: str, object_type: str, privilege: str, object_name: str,
                        db_name: str = "", timeout: float | None = None, **kwargs: Any) -> None:
        """Grant a Milvus privilege as the Postgres grants it maps to (see :mod:`vecpg.rbac`)."""
        check_kwargs("grant_privilege", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            grant_privilege(db, self.schema, role_name, object_type, privilege, object_name,
                            db_name)

    def revoke_privilege(self, role_name: str, object_type: str, privilege: str, object_name: str,
                         db_name: str = "", timeout: float | None = None, **kwargs: Any) -> None:
        """Revoke what :meth:`grant_privilege` granted."""
        check_kwargs("revoke_privilege", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            revoke_privilege(db, self.schema, role_name, object_type, privilege, object_name,
                             db_name)

    def grant_privilege_v2(self, role_name: str, privilege: str, collection_name: str,
                           db_name: str | None = None, timeout: float | None = None,
                           **kwargs: Any) -> None:
        """Grant a privilege or built-in privilege group on a collection (``"*"``: all)."""
        check_kwargs("grant_privilege_v2", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            grant_privilege_v2(db, self.schema, role_name, privilege, collection_name, db_name)

    def revoke_privilege_v2(self, role_name: str, privilege: str, collection_name: str,
                            db_name: str | None = None, timeout: float | None = None,
                            **kwargs: Any) -> None:
        """Revoke what :meth:`grant_privilege_v2` granted."""
        check_kwargs("revoke_privilege_v2", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            revoke_privilege_v2(db, self.schema, role_name, privilege, collection_name, db_name)

    def create_privilege_group(self, group_name: str, timeout: float | None = None,
                               **kwargs: Any) -> None:
        """Not supported: a role holding the grants is the group (create_role + grant_role)."""
        check_kwargs("create_privilege_group", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            create_privilege_group(db, self.schema, group_name)

    def drop_privilege_group(self, group_name: str, timeout: float | None = None,
                             **kwargs: Any) -> None:
        """Not supported (see :meth:`create_privilege_group`)."""
        check_kwargs("drop_privilege_group", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            drop_privilege_group(db, self.schema, group_name)

    def list_privilege_groups(self, timeout: float | None = None,
                              **kwargs: Any) -> list[dict[str, Any]]:
        """The built-in privilege groups and what they grant."""
        check_kwargs("list_privilege_groups", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            return list_privilege_groups(db, self.schema)

    def add_privileges_to_group(self, group_name: str, privileges: list[str],
                                timeout: float | None = None, **kwargs: Any) -> None:
        """Not supported (see :meth:`create_privilege_group`)."""
        check_kwargs("add_privileges_to_group", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            add_privileges_to_group(db, self.schema, group_name, privileges)

    def remove_privileges_from_group(self, group_name: str, privileges: list[str],
                                     timeout: float | None = None, **kwargs: Any) -> None:
        """Not supported (see :meth:`create_privilege_group`)."""
        check_kwargs("remove_privileges_from_group", {"timeout": timeout, **kwargs})
        with self._lease() as db, db.transaction():
            remove_privileges_from_group(db, self.schema, group_name, privileges)
