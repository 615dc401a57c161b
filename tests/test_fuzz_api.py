"""Every public method of the client, called with arguments of the wrong type as well as
wrong values: whatever happens, no exception but a vecpg one escapes (hypothesis picks the
arguments). The collection the calls aim at is made again whenever a call dropped,
renamed or emptied it."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

import vecpg

NAME = "f"
DIM = 4
SKIP = {"close", "connection", "create_schema", "prepare_index_params"}
METHODS = sorted(n for n, f in inspect.getmembers(vecpg.Client, callable)
                 if not n.startswith("_") and n not in SKIP)

# values of every kind that reaches a public call by mistake
junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.just("\x00"), st.just("x" * 300), st.binary(max_size=8),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.floats()), max_size=4),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)),
                    max_size=3),
    st.just(object()), st.just(np.zeros((2, 3), dtype=np.float32)),
    st.just(np.array(["a"], dtype=object)), st.just(float("nan")), st.just(-1),
)

# plausible values per parameter name, so calls also get past their first check
plausible: dict[str, st.SearchStrategy[Any]] = {
    "collection_name": st.sampled_from([NAME, NAME, "nope", "bad name", ""]),
    "old_name": st.sampled_from([NAME, "nope"]),
    "new_name": st.sampled_from(["g_" + uuid.uuid4().hex[:6], NAME, "1bad"]),
    "data": st.one_of(
        st.just([[0.1, 0.2, 0.3, 0.4]]), st.just(np.ones((2, DIM), dtype=np.float32)),
        st.just([{"id": 9000, "vector": [1.0, 0.0, 0.0, 0.0], "tag": "a"}]),
        st.just({"id": [9001], "vector": [[0.5] * DIM]}),
        st.just([[math.nan] * DIM]), st.just([[1.0] * (DIM + 1)])),
    "limit": st.sampled_from([1, 3, 10, 0, 20000]),
    "offset": st.sampled_from([0, 2, 2**63]),
    "filter": st.sampled_from(["", "id > 3", 'tag == "a"', "id >", "nope == 1"]),
    "output_fields": st.sampled_from([None, ["tag"], ["*"], ["vector"], ["count(*)"]]),
    "search_params": st.sampled_from([None, {"params": {"ef": 16}}, {"metric_type": "L2"},
                                      {"exact": True}, {"params": {"nprobe": 2}}]),
    "anns_field": st.sampled_from([None, "vector", "tag"]),
    "partition_names": st.sampled_from([None, ["_default"], ["p1"]]),
    "partition_name": st.sampled_from([None, "_default", "p1", "p2"]),
    "ids": st.sampled_from([[1, 2], 3, [2**63], ["x"], []]),
    "index_name": st.sampled_from(["vector", "tagx", "nope"]),
    "field_name": st.sampled_from(["vector", "tag", "id"]),
    "index_type": st.sampled_from(["HNSW", "IVF_FLAT", "FLAT", "IVF_SQ8", "STL_SORT", "x"]),
    "metric_type": st.sampled_from(["L2", "COSINE", "HAMMING", None]),
    "params": st.sampled_from([None, {}, {"nlist": 2}, {"M": 4, "efConstruction": 8}]),
    "properties": st.sampled_from([{"recall": 0.9}, {"recall": 2}]),
    "recall": st.sampled_from([None, 0.9, 0.0]),
    "strategy": st.sampled_from([None, "exact", "hnsw", "auto", "fastest"]),
    "dimension": st.sampled_from([DIM, 0, None]),
    "queries": st.sampled_from([10, np.ones((3, DIM), dtype=np.float32)]),
    "max_uncovered": st.sampled_from([0.1, 2.0]),
    "role": st.sampled_from(["postgres", "no_such_role", ""]),
    "values": st.sampled_from([["a"], [1, 2], "a", 7, [], [2**63], None]),
    "write": st.sampled_from([False, True]),
    "alias": st.sampled_from(["al_fz", NAME, "1bad"]),
    "db_name": st.sampled_from(["default", "", "nope_db"]),
    "user_name": st.sampled_from(["fz_user", "root"]),
    "role_name": st.sampled_from(["fz_role", "public", "admin"]),
    "password": st.sampled_from(["pw-12345", ""]),
    "property_keys": st.sampled_from([["recall"], ["mmap.enabled"], []]),
    "data_type": st.sampled_from(["INT64", "VARCHAR", "FLOAT_VECTOR", "nope"]),
    "privilege": st.sampled_from(["Search", "Insert", "All", "Nope"]),
    "object_type": st.sampled_from(["Collection", "Global", "User"]),
    "object_name": st.sampled_from([NAME, "*"]),
    "batch_size": st.sampled_from([10, 0, -1]),
}


def _arguments(method: str) -> st.SearchStrategy[dict[str, Any]]:
    sig = inspect.signature(getattr(vecpg.Client, method))
    fields = {}
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.name == "progress":
            continue  # a callback: the caller's own code
        value = st.one_of(plausible.get(p.name, junk), junk)
        fields[p.name] = value if p.default is p.empty else st.one_of(st.just(p.default),
                                                                       value)
    return st.fixed_dictionaries(fields)


def _ensure(client: vecpg.Client) -> None:
    """The target collection as every call expects it: 40 rows, an HNSW index, a partition."""
    if client.has_collection(NAME) and client.count(NAME) >= 10:
        return
    client.drop_collection(NAME)
    client.create_collection(NAME, dimension=DIM, metric_type="L2")
    rng = np.random.default_rng(0)
    client.insert(NAME, {"id": np.arange(40), "vector": rng.normal(size=(40, DIM))
                         .astype(np.float32), "tag": ["a", "b"] * 20})
    client.create_index(NAME, field_name="vector", index_type="HNSW", metric_type="L2")
    client.create_partition(NAME, "p1")


def _roles_and_schemas(dsn: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return ({r[0] for r in conn.execute("SELECT rolname FROM pg_roles")},
                {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")})


@pytest.fixture(scope="module")
def fuzz_client(dsn: str) -> Iterator[vecpg.Client]:
    schema = "fz_" + uuid.uuid4().hex[:8]
    with vecpg.connect(dsn, schema=schema, pool_size=2, pool_timeout=10) as c:
        roles, schemas = _roles_and_schemas(dsn)  # after connect() made schema vecpg
        yield c
        c.use_database("default")
        for name in c.list_collections():
            c.drop_collection(name)
    # what the calls made (create_user, create_database, ...) goes again
    new_roles, new_schemas = _roles_and_schemas(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for s in (new_schemas - schemas) | {schema}:
            conn.execute(sql.SQL("DELETE FROM vecpg.collections WHERE schema_name = %s"), (s,))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))
        for r in new_roles - roles:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(r)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(r)))


@pytest.mark.parametrize("method", METHODS)
def test_only_vecpg_errors_escape(fuzz_client: vecpg.Client, method: str,
                                  request: pytest.FixtureRequest) -> None:
    if "pg16" in request.node.callspec.id:
        pytest.skip("argument checks do not depend on the server version: one is enough")
    client = fuzz_client

    # derandomized in the suite, so CI runs the same examples every time;
    # VECPG_FUZZ_EXAMPLES=500 VECPG_FUZZ_RANDOM=1 for a longer, random campaign
    @settings(max_examples=int(os.environ.get("VECPG_FUZZ_EXAMPLES", "40")), deadline=None,
              database=None, derandomize=not os.environ.get("VECPG_FUZZ_RANDOM"),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(args=_arguments(method))
    def call(args: dict[str, Any]) -> None:
        _ensure(client)
        with contextlib.suppress(vecpg.VecpgError):
            getattr(client, method)(**args)
    call()
