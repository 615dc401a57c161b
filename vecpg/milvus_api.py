"""Every public method of pymilvus' ``MilvusClient``, and what vecpg does with it.

:data:`STATUS` classifies each: ``works`` (same call, same meaning), ``postgres`` (done the
Postgres way, or accepted as a no-op that is true on one Postgres: the note says which) or
``not_supported`` (a Milvus cluster concept, or not built yet: the method exists and raises
:class:`~vecpg.errors.NotSupported` with the note, which names what to use instead).
``tests/test_milvus_api.py`` fails when pymilvus grows a method this table does not
classify, and the README's table is generated from it.
"""

from __future__ import annotations

from typing import Any

from .errors import NotSupported

_CLUSTER = ("a Milvus cluster concept with no meaning on one Postgres server; "
            "Postgres' own replication and resource settings do this job")
_SNAPSHOT = ("Milvus snapshots are not supported; use pg_dump / pg_basebackup, or "
             "CREATE TABLE ... AS SELECT for a copy of one collection")
_FUNCTIONS = ("functions are defined in the schema given to create_collection (BM25 only; "
              "text embedding and rerank functions are not supported): compute vectors "
              "before inserting them")
_SEGMENTS = "Milvus segments do not exist here: a collection is one Postgres table"
_EXTERNAL = "external collections are not supported: use a foreign table (postgres_fdw)"
_FILES = "file resources are not supported"

STATUS: dict[str, tuple[str, str]] = {
    # collections
    "create_collection": ("works", "quick form and schemas (vecpg's or pymilvus'), BM25 "
                          "functions"),
    "describe_collection": ("works", "pymilvus' keys, plus vecpg's table, metrics, indexes"),
    "has_collection": ("works", ""),
    "list_collections": ("works", "the collections of the current database (schema)"),
    "drop_collection": ("works", ""),
    "rename_collection": ("works", "within one database"),
    "truncate_collection": ("postgres", "TRUNCATE"),
    "get_collection_stats": ("works", "row_count"),
    "alter_collection_properties": ("works", "kept; vecpg's own: recall"),
    "drop_collection_properties": ("works", ""),
    "alter_collection_field": ("not_supported", "ALTER TABLE ... ALTER COLUMN outside vecpg"),
    "add_collection_field": ("works", "ALTER TABLE ADD COLUMN; nullable or with a default"),
    "drop_collection_field": ("not_supported", "not built yet"),
    "add_collection_struct_field": ("not_supported", "struct fields are not supported"),
    "add_collection_function": ("not_supported", _FUNCTIONS),
    "alter_collection_function": ("not_supported", _FUNCTIONS),
    "drop_collection_function": ("not_supported", _FUNCTIONS),
    "add_function_field": ("not_supported", _FUNCTIONS),
    "drop_function_field": ("not_supported", _FUNCTIONS),
    "load_collection": ("postgres", "no-op: a table is always served"),
    "release_collection": ("postgres", "no-op"),
    "refresh_load": ("postgres", "no-op"),
    "get_load_state": ("postgres", "always Loaded"),
    "flush": ("postgres", "no-op: every write is durable at commit"),
    "flush_all": ("postgres", "no-op: every write is durable at commit"),
    "get_flush_all_state": ("postgres", "always done"),
    "compact": ("postgres", "VACUUM (ANALYZE) and companion-index compaction"),
    "get_compaction_state": ("postgres", "Completed: compact finishes before it returns"),
    "optimize": ("postgres", "as compact"),
    # data
    "insert": ("works", "a key given again keeps its last row"),
    "upsert": ("works", "partial_update too"),
    "delete": ("works", "ids or filter"),
    "get": ("works", ""),
    "query": ("works", "filter_params, order_by_fields, group_by_fields with aggregates"),
    "search": ("works", "planned (exact, HNSW, IVF, quantized companions); group_by_field exact; "
               "BM25 on text queries, exact"),
    "hybrid_search": ("works", "RRF and weighted fusion of planned searches"),
    "query_iterator": ("works", "on a consistent snapshot"),
    "search_iterator": ("works", "on a consistent snapshot, exact"),
    "run_analyzer": ("not_supported", "analyzers are not built yet"),
    # indexes
    "create_index": ("works", "pgvector HNSW/IVF, quantized companions, scalar btree/GIN"),
    "describe_index": ("works", "pymilvus' keys, plus sizes and build state"),
    "list_indexes": ("works", ""),
    "drop_index": ("works", ""),
    "alter_index_properties": ("not_supported", "index properties (mmap) have no meaning here"),
    "drop_index_properties": ("not_supported", "index properties (mmap) have no meaning here"),
    # partitions
    "create_partition": ("works", "a label column; refused with a partition key, as in Milvus"),
    "drop_partition": ("works", "deletes its rows"),
    "has_partition": ("works", ""),
    "list_partitions": ("works", ""),
    "load_partitions": ("postgres", "no-op"),
    "release_partitions": ("postgres", "no-op"),
    "get_partition_stats": ("works", "row_count"),
    # aliases and databases
    "create_alias": ("works", ""),
    "drop_alias": ("works", ""),
    "alter_alias": ("works", ""),
    "describe_alias": ("works", ""),
    "list_aliases": ("works", ""),
    "create_database": ("postgres", "a Postgres schema"),
    "drop_database": ("postgres", "DROP SCHEMA, refused while it has collections"),
    "list_databases": ("postgres", "default + schemas made by create_database"),
    "describe_database": ("postgres", "name and properties"),
    "use_database": ("postgres", "switches the client's schema"),
    "using_database": ("postgres", "as use_database"),
    "alter_database_properties": ("postgres", "kept"),
    "drop_database_properties": ("postgres", "kept"),
    # users, roles, privileges
    "create_user": ("postgres", "a LOGIN role"),
    "drop_user": ("postgres", "DROP ROLE"),
    "update_password": ("postgres", "ALTER ROLE ... PASSWORD"),
    "update_user": ("postgres", "the description: COMMENT ON ROLE"),
    "list_users": ("postgres", "LOGIN roles"),
    "describe_user": ("postgres", "its roles"),
    "create_role": ("postgres", "a NOLOGIN role"),
    "alter_role": ("postgres", "the description: COMMENT ON ROLE"),
    "drop_role": ("postgres", "DROP ROLE"),
    "describe_role": ("postgres", "read back from Postgres' grants"),
    "list_roles": ("postgres", "NOLOGIN roles"),
    "grant_role": ("postgres", "GRANT role TO user"),
    "revoke_role": ("postgres", "REVOKE role FROM user"),
    "grant_privilege": ("postgres", "table and schema grants"),
    "revoke_privilege": ("postgres", "table and schema grants"),
    "grant_privilege_v2": ("postgres", "table and schema grants"),
    "revoke_privilege_v2": ("postgres", "table and schema grants"),
    "create_privilege_group": ("not_supported", "a role holding the grants is the group"),
    "drop_privilege_group": ("not_supported", "a role holding the grants is the group"),
    "list_privilege_groups": ("postgres", "the built-in groups"),
    "add_privileges_to_group": ("not_supported", "a role holding the grants is the group"),
    "remove_privileges_from_group": ("not_supported", "a role holding the grants is the group"),
    # cluster administration
    "get_server_version": ("postgres", "Postgres' version (detail: pgvector's, vecpg's)"),
    "close": ("works", ""),
    "get_server_type": ("postgres", '"vecpg"'),
    "session": ("not_supported", _CLUSTER),
    "create_resource_group": ("not_supported", _CLUSTER),
    "update_resource_groups": ("not_supported", _CLUSTER),
    "drop_resource_group": ("not_supported", _CLUSTER),
    "describe_resource_group": ("not_supported", _CLUSTER),
    "list_resource_groups": ("not_supported", _CLUSTER),
    "transfer_replica": ("not_supported", _CLUSTER),
    "describe_replica": ("not_supported", _CLUSTER),
    "update_replicate_configuration": ("not_supported", _CLUSTER),
    "get_replicate_configuration": ("not_supported", _CLUSTER),
    "get_replicate_info": ("not_supported", _CLUSTER),
    "dump_messages": ("not_supported", _CLUSTER),
    "list_loaded_segments": ("not_supported", _SEGMENTS),
    "list_persistent_segments": ("not_supported", _SEGMENTS),
    "list_segments": ("not_supported", _SEGMENTS),
    "get_compaction_plans": ("not_supported", _SEGMENTS),
    "list_compaction_tasks": ("not_supported", _SEGMENTS),
    "create_snapshot": ("not_supported", _SNAPSHOT),
    "drop_snapshot": ("not_supported", _SNAPSHOT),
    "list_snapshots": ("not_supported", _SNAPSHOT),
    "describe_snapshot": ("not_supported", _SNAPSHOT),
    "restore_snapshot": ("not_supported", _SNAPSHOT),
    "get_restore_snapshot_state": ("not_supported", _SNAPSHOT),
    "list_restore_snapshot_jobs": ("not_supported", _SNAPSHOT),
    "pin_snapshot_data": ("not_supported", _SNAPSHOT),
    "unpin_snapshot_data": ("not_supported", _SNAPSHOT),
    "add_file_resource": ("not_supported", _FILES),
    "remove_file_resource": ("not_supported", _FILES),
    "list_file_resources": ("not_supported", _FILES),
    "refresh_external_collection": ("not_supported", _EXTERNAL),
    "get_refresh_external_collection_progress": ("not_supported", _EXTERNAL),
    "list_refresh_external_collection_jobs": ("not_supported", _EXTERNAL),
    # pymilvus' static helpers
    "create_schema": ("works", "vecpg's CollectionSchema"),
    "create_field_schema": ("works", "vecpg's FieldSchema"),
    "create_struct_field_schema": ("not_supported", "struct fields are not supported"),
    "prepare_index_params": ("works", "vecpg's IndexParams"),
}


def _unsupported(name: str, note: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotSupported(f"{name}: {note}")
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Not supported: {note}."
    return method


class UnsupportedMethods:
    """The MilvusClient methods vecpg classifies ``not_supported``: each raises
    :class:`NotSupported` with what to do instead."""


for _name, (_status, _note) in STATUS.items():
    if _status == "not_supported" and _name not in ("create_struct_field_schema",):
        setattr(UnsupportedMethods, _name, _unsupported(_name, _note))


def table() -> str:
    """The README's table: every method, its status and the note, in Markdown."""
    label = {"works": "works", "postgres": "Postgres equivalent",
             "not_supported": "NotSupported"}
    lines = ["| method | status | note |", "| --- | --- | --- |"]
    for name in sorted(STATUS):
        status, note = STATUS[name]
        lines.append(f"| `{name}` | {label[status]} | {note} |")
    return "\n".join(lines)
