"""prepare_batch / copy_batch against a real Postgres: exact round trips and typed errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector import Bit, HalfVector, SparseVector, Vector
from pgvector.psycopg import register_vector
from psycopg import sql

from vecpg.copybin import _fixed_layout
from vecpg.errors import (
    DimensionMismatch,
    DuplicateKey,
    FieldTypeError,
    InvalidArgument,
    InvalidName,
    InvalidVector,
    SchemaError,
    ValueTooLong,
)
from vecpg.ingest import Batch, copy_batch, prepare_batch
from vecpg.schema import CollectionSchema
from vecpg.schema import DataType as DT
from vecpg.session import Db

F32 = np.float32


def make_table(conn: psycopg.Connection, schema_name: str, cs: CollectionSchema) -> sql.Identifier:
    table = sql.Identifier(schema_name, "t")
    conn.execute(cs.create_table_sql(table))
    register_vector(conn)
    return table


def load(conn: psycopg.Connection, table: sql.Composable, batch: Batch) -> None:
    with conn.transaction():
        copy_batch(Db(conn), table, batch)


def count(conn: psycopg.Connection, table: sql.Composable) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    assert row is not None
    return int(row[0])


def select(conn: psycopg.Connection, table: sql.Composable, cols: str) -> list[dict[str, Any]]:
    # cols is a constant written in this file, never user input.
    q = sql.SQL("SELECT " + cols + " FROM {} ORDER BY id").format(table)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(q).fetchall()


def as_numpy(v: Any) -> np.ndarray:
    """pgvector-python loads ``vector`` as Vector or ndarray depending on its version."""
    return v.to_numpy() if isinstance(v, Vector) else np.asarray(v)


def bit_text(v: Any) -> str:
    """``bit`` comes back as Bit (binary) or as its text (text format)."""
    return v.to_text() if isinstance(v, Bit) else str(v)


# -- a schema with every data type ---------------------------------------------------------

def every_type_schema(dynamic: bool = False) -> CollectionSchema:
    cs = CollectionSchema(enable_dynamic_field=dynamic)
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("b", DT.BOOL)
    cs.add_field("i8", DT.INT8)
    cs.add_field("i16", DT.INT16)
    cs.add_field("i32", DT.INT32)
    cs.add_field("i64", DT.INT64)
    cs.add_field("f", DT.FLOAT)
    cs.add_field("d", DT.DOUBLE)
    cs.add_field("s", DT.VARCHAR, max_length=8)
    cs.add_field("j", DT.JSON)
    cs.add_field("ai", DT.ARRAY, element_type=DT.INT32, max_capacity=4)
    cs.add_field("as_", DT.ARRAY, element_type=DT.VARCHAR, max_length=5, max_capacity=3)
    cs.add_field("af", DT.ARRAY, element_type=DT.FLOAT)
    cs.add_field("ab", DT.ARRAY, element_type=DT.BOOL)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=4)
    cs.add_field("h", DT.FLOAT16_VECTOR, dim=3)
    cs.add_field("bits", DT.BINARY_VECTOR, dim=12)  # not a multiple of 8: padding bits
    cs.add_field("sp", DT.SPARSE_FLOAT_VECTOR, dim=100)
    cs.add_field("ni", DT.INT32, nullable=True)
    cs.add_field("nf", DT.DOUBLE, nullable=True)
    cs.add_field("nb", DT.BOOL, nullable=True)
    cs.add_field("ns", DT.VARCHAR, max_length=20, nullable=True)
    cs.add_field("nj", DT.JSON, nullable=True)
    cs.add_field("na", DT.ARRAY, element_type=DT.INT64, nullable=True)
    cs.add_field("di", DT.INT16, default_value=7)
    cs.add_field("ds", DT.VARCHAR, max_length=10, default_value="dflt")
    return cs


ROWS: list[dict[str, Any]] = [
    {"id": 10, "b": True, "i8": -128, "i16": 32767, "i32": -(2**31), "i64": 2**63 - 1,
     "f": 0.1, "d": 0.1, "s": "héllo", "j": {"a": [1, 2, {"b": None}], "ü": "x"},
     "ai": [1, -2, 3], "as_": ["ab", "ç"], "af": [1.5, 2], "ab": [True, False],
     "v": [0.1, -2.5, 3.0, 1e-7], "h": [0.1, 2.0, -65504.0], "bits": "101100001111",
     "sp": {0: 1.5, 99: -0.25, 7: 3}, "ni": 5, "nf": -0.5, "nb": False, "ns": "tab\there",
     "nj": [1, "two"], "na": [2**40], "di": 1, "ds": "given"},
    {"id": 11, "b": False, "i8": 127, "i16": -32768, "i32": 2**31 - 1, "i64": -(2**63),
     "f": -3, "d": 1e300, "s": "", "j": "just a string", "ai": [], "as_": [], "af": [],
     "ab": [], "v": [0, 0, 0, 0], "h": [1e-3, 0.0, 65504], "bits": [0] * 12,
     "sp": {}, "ni": None, "nf": None, "nb": None, "ns": None, "nj": None, "na": None},
    {"id": -3, "b": True, "i8": 0, "i16": 0, "i32": 0, "i64": 0, "f": 3.4e38, "d": -0.0,
     "s": "12345678", "j": 3.25, "ai": [4, 3, 2, 1], "as_": ["a", "bb", "ccc"],
     "af": [-1e-3], "ab": [True], "v": np.array([1, 2, 3, 4], dtype=np.float64),
     "h": np.array([0.5, -0.5, 0.25], dtype=np.float16), "bits": b"\xf0\xff",
     "sp": SparseVector({3: 2.0}, 100), "ni": -1, "nb": True, "ds": "x"},
]


def expected_row(r: dict[str, Any]) -> dict[str, Any]:
    """What Postgres must give back for an input row of ROWS."""
    bits = r["bits"]
    if isinstance(bits, bytes):
        bits = "".join(f"{x:08b}" for x in bits)[:12]
    elif isinstance(bits, list):
        bits = "".join(map(str, bits))
    sp = r["sp"]
    if isinstance(sp, SparseVector):
        sp = dict(zip(sp.indices(), sp.values()))
    sp = {k: float(F32(v)) for k, v in sorted(sp.items()) if v != 0}
    return {
        "id": r["id"], "b": r["b"], "i8": r["i8"], "i16": r["i16"], "i32": r["i32"],
        "i64": r["i64"], "f": F32(r["f"]), "d": float(r["d"]), "s": r["s"], "j": r["j"],
        "ai": r["ai"], "as_": r["as_"], "af": [F32(x) for x in r["af"]], "ab": r["ab"],
        "v": np.asarray(r["v"], dtype=F32), "h": np.asarray(r["h"], dtype=np.float16),
        "bits": bits, "sp": sp, "ni": r.get("ni"), "nf": r.get("nf"), "nb": r.get("nb"),
        "ns": r.get("ns"), "nj": r.get("nj"), "na": r.get("na"), "di": r.get("di", 7),
        "ds": r.get("ds", "dflt"),
    }


def assert_rows_equal(got: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    want = sorted((expected_row(r) for r in rows), key=lambda r: r["id"])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g = dict(g)
        assert g.pop("_partition") == "_default"
        np.testing.assert_array_equal(as_numpy(g.pop("v")), w.pop("v"), strict=True)
        h = g.pop("h")
        assert isinstance(h, HalfVector)
        np.testing.assert_array_equal(h.to_numpy(), w.pop("h"), strict=True)
        g["bits"] = bit_text(g["bits"])
        # real comes back as its shortest decimal text, which names the float32 exactly
        g["f"], g["af"] = F32(g["f"]), [F32(x) for x in g["af"]]
        sp = g.pop("sp")
        assert sp.dimensions() == 100
        assert dict(zip(sp.indices(), sp.values())) == w.pop("sp")
        assert g == w


def test_round_trip_rows_every_type(conn: psycopg.Connection, schema_name: str) -> None:
    cs = every_type_schema()
    table = make_table(conn, schema_name, cs)
    batch = prepare_batch(cs, ROWS)
    assert batch.n == 3 and batch.pk_values == [10, 11, -3]
    assert len(batch.columns) == len(batch.pg_types) and "vector" in batch.pg_types
    load(conn, table, batch)
    assert_rows_equal(select(conn, table, "*"), ROWS)


def test_round_trip_columnar_every_type(conn: psycopg.Connection, schema_name: str) -> None:
    cs = every_type_schema()
    table = make_table(conn, schema_name, cs)
    rows = [dict(r) for r in ROWS]
    for r in rows:
        r["ds"] = r.get("ds", "dflt")  # the column is present: its default_value fills gaps
        r.setdefault("nf", None)
        r.setdefault("ns", None)
        r.setdefault("nj", None)
        r.setdefault("na", None)
    data: dict[str, Any] = {k: [r[k] for r in rows] for k in rows[0] if k != "di"}
    data["ds"][2] = None  # None with a default_value takes the default
    rows[2]["ds"] = "dflt"
    data["id"] = np.array(data["id"], dtype=np.int64)
    data["i8"] = np.array(data["i8"], dtype=np.int8)
    data["i16"] = np.array(data["i16"], dtype=np.int16)
    data["i32"] = np.array(data["i32"], dtype=np.int64)
    data["f"] = np.array(data["f"], dtype=np.float64)
    data["b"] = np.array(data["b"])
    data["v"] = np.stack([np.asarray(v, dtype=np.float64) for v in data["v"]])
    data["h"] = np.stack([np.asarray(v, dtype=np.float32) for v in data["h"]])
    data["s"] = np.array(data["s"])  # a numpy str array
    load(conn, table, prepare_batch(cs, data))
    for r in rows:
        r.pop("di", None)  # absent from every row: the table's DEFAULT applies
    assert_rows_equal(select(conn, table, "*"), rows)


def test_dynamic_fields_go_to_meta(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema(enable_dynamic_field=True)
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=2)
    table = make_table(conn, schema_name, cs)
    load(conn, table, prepare_batch(cs, [
        {"id": 1, "v": [1, 2], "color": "red", "n": np.int64(3), "$meta": {"a": 1, "n": 0}},
        {"id": 2, "v": [3, 4]},
        {"id": 3, "v": [5, 6], "$meta": {"deep": {"x": [1.5, None]}}, "arr": np.arange(2)},
    ]))
    load(conn, table, prepare_batch(cs, {"id": [4, 5], "v": np.ones((2, 2)),
                                         "tag": np.array(["p", "q"]), "k": [1, None]}))
    load(conn, table, prepare_batch(cs, {"id": 6, "v": [0, 0], "only": True}))  # one row dict
    got = [tuple(r) for r in conn.execute(
        sql.SQL("SELECT id, _meta FROM {} ORDER BY id").format(table))]
    assert got == [(1, {"a": 1, "n": 3, "color": "red"}), (2, {}),
                   (3, {"deep": {"x": [1.5, None]}, "arr": [0, 1]}),
                   (4, {"tag": "p", "k": 1}), (5, {"tag": "q", "k": None}), (6, {"only": True})]


def test_partition_and_auto_id(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema()
    cs.add_field("id", DT.INT64, is_primary=True, auto_id=True)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=2)
    table = make_table(conn, schema_name, cs)
    batch = prepare_batch(cs, [{"v": [1, 2]}, {"v": [3, 4]}], partition="p1")
    assert batch.pk_values is None and "id" not in batch.columns
    load(conn, table, batch)  # the identity column numbers the rows
    batch = prepare_batch(cs, {"v": np.zeros((3, 2), F32)})
    batch.set_ids(np.array([100, 101, 102]))
    assert batch.pk_values == [100, 101, 102] and batch.columns[0] == "id"
    load(conn, table, batch)
    load(conn, table, prepare_batch(cs, [{"id": 7, "v": [0, 1]}]))  # explicit keys are kept
    got = [tuple(r) for r in conn.execute(
        sql.SQL("SELECT id, _partition FROM {} ORDER BY id").format(table))]
    assert got == [(1, "p1"), (2, "p1"), (7, "_default"), (100, "_default"),
                   (101, "_default"), (102, "_default")]
    with pytest.raises(SchemaError, match=r"row 0, field 'id'.*missing"):
        prepare_batch(cs, [{"v": [1, 2]}], require_pk=True)
    with pytest.raises(SchemaError, match=r"row 1, field 'id'.*every row or in none"):
        prepare_batch(cs, [{"id": 1, "v": [1, 2]}, {"v": [1, 2]}])
    with pytest.raises(DuplicateKey, match=r"row 2, field 'id'.*5 repeats row 0"):
        prepare_batch(cs, {"v": np.zeros((3, 2))}).set_ids([5, 6, 5])
    with pytest.raises(InvalidArgument, match="expected 3 ids"):
        prepare_batch(cs, {"v": np.zeros((3, 2))}).set_ids([5, 6])
    with pytest.raises(InvalidName):
        prepare_batch(cs, [{"v": [1, 2]}], partition="no spaces")


def test_binary_vector_forms(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema()
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("bv", DT.BINARY_VECTOR, dim=16)
    table = make_table(conn, schema_name, cs)
    want = "1000000111111110"
    forms = [bytes([0b10000001, 0b11111110]), want, [int(c) for c in want],
             [c == "1" for c in want], np.array([0x81, 0xFE], np.uint8),
             np.array([c == "1" for c in want]), Bit(want)]
    load(conn, table, prepare_batch(cs, [{"id": i, "bv": f} for i, f in enumerate(forms)]))
    n = len(forms)
    packed = np.tile(np.array([0x81, 0xFE], np.uint8), (2, 1))
    unpacked = np.unpackbits(packed, axis=1)
    load(conn, table, prepare_batch(cs, {"id": [n, n + 1], "bv": packed}))
    load(conn, table, prepare_batch(cs, {"id": [n + 2, n + 3], "bv": unpacked}))
    load(conn, table, prepare_batch(cs, {"id": [n + 4, n + 5], "bv": [want, forms[0]]}))
    got = [bit_text(r[0]) for r in conn.execute(
        sql.SQL("SELECT bv FROM {} ORDER BY id").format(table))]
    assert got == [want] * (n + 6)


def test_vector_objects_and_halfvec_rounding(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema()
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=3)
    cs.add_field("h", DT.FLOAT16_VECTOR, dim=3)
    table = make_table(conn, schema_name, cs)
    x = np.array([0.1, 1 / 3, 2049.0])  # none is exact in float16
    load(conn, table, prepare_batch(cs, [{"id": 1, "v": Vector(x.tolist()), "h": HalfVector(x)},
                                         {"id": 2, "v": tuple(x), "h": x.tolist()}]))
    for v, h in conn.execute(sql.SQL("SELECT v, h FROM {} ORDER BY id").format(table)):
        np.testing.assert_array_equal(as_numpy(v), x.astype(F32), strict=True)
        np.testing.assert_array_equal(h.to_numpy(), x.astype(np.float16), strict=True)


def test_large_columnar_batch_round_trips(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema()
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("score", DT.FLOAT)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=64)
    cs.add_field("h", DT.FLOAT16_VECTOR, dim=8)
    table = make_table(conn, schema_name, cs)
    n = 20_000
    rng = np.random.default_rng(7)
    ids = rng.permutation(n).astype(np.int64) * 3 - 5
    v = rng.standard_normal((n, 64), dtype=F32)
    h = rng.standard_normal((n, 8)).astype(F32)
    score = rng.random(n, dtype=F32)
    batch = prepare_batch(cs, {"id": ids, "score": score, "v": v, "h": h})
    assert all(_fixed_layout(c, j) for j, c in enumerate(batch.cols))  # all fixed width
    load(conn, table, batch)
    order = np.argsort(ids)
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(sql.SQL("SELECT id, score, v, h FROM {} ORDER BY id")
                           .format(table)).fetchall()
    assert len(rows) == n
    np.testing.assert_array_equal([r[0] for r in rows], ids[order])
    np.testing.assert_array_equal(np.array([r[1] for r in rows], F32), score[order])
    np.testing.assert_array_equal(np.stack([as_numpy(r[2]) for r in rows]), v[order], strict=True)
    np.testing.assert_array_equal(np.stack([r[3].to_numpy() for r in rows]),
                                  h[order].astype(np.float16), strict=True)


def test_varchar_primary_key_and_pg_types(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema(enable_dynamic_field=True)
    cs.add_field("pk", DT.VARCHAR, is_primary=True, max_length=10)
    cs.add_field("n", DT.INT8, nullable=True)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=2)
    table = make_table(conn, schema_name, cs)
    batch = prepare_batch(cs, [{"pk": "b", "v": [1, 2], "x": 1}, {"pk": "a", "v": [3, 4]}])
    assert dict(zip(batch.columns, batch.pg_types)) == {
        "pk": "varchar", "v": "vector", "_partition": "text", "_meta": "jsonb"}
    assert batch.pk_values == ["b", "a"]
    load(conn, table, batch)
    got = [tuple(r) for r in conn.execute(
        sql.SQL("SELECT pk, n, _meta FROM {} ORDER BY pk").format(table))]
    assert got == [("a", None, {}), ("b", None, {"x": 1})]
    with pytest.raises(DuplicateKey, match=r"row 2, field 'pk': primary key 'a' repeats row 0"):
        prepare_batch(cs, {"pk": ["a", "b", "a"], "v": np.zeros((3, 2))})


def test_vectors_as_ndarray_rows() -> None:
    cs = small_schema()
    rows = good_rows() * 2
    rows = [{**r, "id": i, "v": np.arange(3, dtype=np.float64) + i} for i, r in enumerate(rows)]
    batch = prepare_batch(cs, rows)
    np.testing.assert_array_equal(batch.column("v").values, np.arange(3) + np.arange(6)[:, None])
    assert batch.column("v").values.dtype == F32
    rows[4]["v"] = np.arange(4.0)
    with pytest.raises(DimensionMismatch, match=r"row 4, field 'v': expected dim 3, got 4"):
        prepare_batch(cs, rows)
    rows[4]["v"] = np.array([0, np.nan, 0])
    with pytest.raises(InvalidVector, match=r"row 4, field 'v'"):
        prepare_batch(cs, rows)


def test_many_rows_with_variable_width_columns(conn: psycopg.Connection,
                                               schema_name: str) -> None:
    """Enough rows for several COPY chunks, each interleaving fixed and variable cells."""
    cs = CollectionSchema(enable_dynamic_field=True)
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("s", DT.VARCHAR, max_length=40)
    cs.add_field("n", DT.INT32, nullable=True)
    cs.add_field("tags", DT.ARRAY, element_type=DT.VARCHAR, max_length=8)
    cs.add_field("sp", DT.SPARSE_FLOAT_VECTOR, dim=1000)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=16)
    table = make_table(conn, schema_name, cs)
    n = 12_000
    rng = np.random.default_rng(3)
    v = rng.standard_normal((n, 16), dtype=F32)
    rows = [{"id": i, "s": "ß" * (i % 40), "n": None if i % 3 else i, "tags": ["t"] * (i % 4),
             "sp": {int(i % 1000): 1.0 + i, 999: -1.0}, "v": v[i], "k": i % 5}
            for i in range(n)]
    load(conn, table, prepare_batch(cs, rows))
    got = select(conn, table, "id, s, n, tags, sp, v, _meta")
    assert len(got) == n
    for r, g in zip(rows, got):
        assert (g["id"], g["s"], g["n"], g["tags"]) == (r["id"], r["s"], r["n"], r["tags"])
        sp = dict(zip(g["sp"].indices(), g["sp"].values()))
        assert sp == {k: float(F32(x)) for k, x in r["sp"].items()}
        assert g["_meta"] == {"k": r["k"]}
        np.testing.assert_array_equal(as_numpy(g["v"]), r["v"], strict=True)


def test_client_encoding_is_respected(conn: psycopg.Connection, schema_name: str) -> None:
    cs = CollectionSchema()
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("s", DT.VARCHAR, max_length=5)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=1)
    table = make_table(conn, schema_name, cs)
    conn.execute("SET client_encoding TO 'LATIN1'")
    load(conn, table, prepare_batch(cs, [{"id": 1, "s": "déjà", "v": [1]}]))
    with pytest.raises(FieldTypeError, match=r"'s'.*encoding"):
        load(conn, table, prepare_batch(cs, [{"id": 2, "s": "€", "v": [1]}]))
    conn.execute("SET client_encoding TO 'UTF8'")
    assert conn.execute(sql.SQL("SELECT s FROM {}").format(table)).fetchall() == [("déjà",)]


# -- errors --------------------------------------------------------------------------------

def small_schema(dynamic: bool = False) -> CollectionSchema:
    cs = CollectionSchema(enable_dynamic_field=dynamic)
    cs.add_field("id", DT.INT64, is_primary=True)
    cs.add_field("i8", DT.INT8, default_value=0)
    cs.add_field("i16", DT.INT16, default_value=0)
    cs.add_field("i32", DT.INT32, default_value=0)
    cs.add_field("f", DT.FLOAT, default_value=0.0)
    cs.add_field("d", DT.DOUBLE, default_value=0.0)
    cs.add_field("ok", DT.BOOL, default_value=False)
    cs.add_field("s", DT.VARCHAR, max_length=4, default_value="")
    cs.add_field("j", DT.JSON, nullable=True)
    cs.add_field("a", DT.ARRAY, element_type=DT.INT32, max_capacity=2, nullable=True)
    cs.add_field("as_", DT.ARRAY, element_type=DT.VARCHAR, max_length=2, nullable=True)
    cs.add_field("v", DT.FLOAT_VECTOR, dim=3)
    cs.add_field("h", DT.FLOAT16_VECTOR, dim=2, default_value=None)
    cs.add_field("bv", DT.BINARY_VECTOR, dim=8)
    cs.add_field("sp", DT.SPARSE_FLOAT_VECTOR, dim=10)
    return cs


def good_rows() -> list[dict[str, Any]]:
    return [{"id": i, "v": [1.0, 2.0, 3.0], "h": [0.5, 1.0], "bv": b"\x0f", "sp": {1: 1.0}}
            for i in range(3)]


BAD: list[tuple[str, Any, type[Exception], str]] = [
    # (field, bad value for row 1, error class, text the message must contain)
    ("nope", 1, SchemaError, "unknown field"),
    ("id", None, SchemaError, "missing"),
    ("id", 0, DuplicateKey, "repeats row 0"),
    ("id", True, FieldTypeError, "integer"),
    ("id", 1.0, FieldTypeError, "integer"),
    ("id", "1", FieldTypeError, "integer"),
    ("id", 2**63, FieldTypeError, "out of range"),
    ("i8", 128, FieldTypeError, "out of range"),
    ("i16", -(2**15) - 1, FieldTypeError, "out of range"),
    ("i32", 2**31, FieldTypeError, "out of range"),
    ("i32", np.float32(1), FieldTypeError, "integer"),
    ("f", float("nan"), InvalidArgument, "finite"),
    ("f", 1e39, InvalidArgument, "finite"),
    ("d", float("-inf"), InvalidArgument, "finite"),
    ("d", "1.5", FieldTypeError, "number"),
    ("d", False, FieldTypeError, "number"),
    ("ok", 1, FieldTypeError, "bool"),
    ("s", 12, FieldTypeError, "str"),
    ("s", "abcde", ValueTooLong, "max_length is 4"),
    ("s", "a\x00", SchemaError, "NUL"),
    ("s", "\ud800", FieldTypeError, "UTF-8"),
    ("j", {1, 2}, FieldTypeError, "JSON"),
    ("j", [float("nan")], FieldTypeError, "JSON"),
    ("j", "a\x00b", FieldTypeError, "u0000"),
    ("a", [1, 2, 3], ValueTooLong, "max_capacity is 2"),
    ("a", [1, "x"], FieldTypeError, "element 1"),
    ("a", [1, None], FieldTypeError, "element 1"),
    ("a", 5, FieldTypeError, "list"),
    ("as_", ["abc"], ValueTooLong, "element 0"),
    ("v", [1.0, 2.0], DimensionMismatch, "expected dim 3, got 2"),
    ("v", [1.0, float("nan"), 3.0], InvalidVector, "NaN"),
    ("v", [1.0, float("inf"), 3.0], InvalidVector, "NaN or infinity"),
    ("v", [1.0, "x", 3.0], FieldTypeError, "numbers"),
    ("v", [1.0, None, 3.0], FieldTypeError, "numbers"),
    ("v", "abc", FieldTypeError, "list of numbers"),
    ("v", np.zeros((1, 3)), FieldTypeError, "1-D"),
    ("v", None, SchemaError, "null"),
    ("h", [70000.0, 1.0], InvalidVector, "65504"),
    ("h", [1.0, -65505.0], InvalidVector, "65504"),
    ("bv", b"\x00\x00", DimensionMismatch, "expected dim 8"),
    ("bv", [0, 1, 2, 0, 0, 0, 0, 0], FieldTypeError, "0/1"),
    ("bv", "0101010x", FieldTypeError, "'0' and '1'"),
    ("bv", 3.5, FieldTypeError, "expected bytes"),
    ("sp", {10: 1.0}, DimensionMismatch, "index 10"),
    ("sp", {-1: 1.0}, DimensionMismatch, "index -1"),
    ("sp", {1: float("nan")}, InvalidVector, "NaN"),
    ("sp", {"1": 1.0}, FieldTypeError, "integers"),
    ("sp", {1: "x"}, FieldTypeError, "numbers"),
    ("sp", [1.0, 0.0], FieldTypeError, "dict"),
    ("sp", SparseVector({1: 1.0}, 11), DimensionMismatch, "expected dim 10, got 11"),
]


@pytest.mark.parametrize("field,value,cls,text", BAD,
                         ids=[f"{f}-{c.__name__}-{i}" for i, (f, _, c, _) in enumerate(BAD)])
def test_bad_value_in_middle_row_raises_and_writes_nothing(
        conn: psycopg.Connection, schema_name: str, field: str, value: Any,
        cls: type[Exception], text: str) -> None:
    cs = small_schema()
    table = make_table(conn, schema_name, cs)
    load(conn, table, prepare_batch(cs, [{**r, "id": 100 + r["id"]} for r in good_rows()]))
    rows = good_rows()
    rows[1][field] = value
    with pytest.raises(cls) as exc:
        load(conn, table, prepare_batch(cs, rows))
    msg = str(exc.value)
    assert f"'{field}'" in msg and "row 1" in msg and text in msg, msg
    assert count(conn, table) == 3


@pytest.mark.parametrize("cols,cls,text", [
    ({"v": np.zeros((4, 2))}, DimensionMismatch, "expected dim 3, got 2"),
    ({"v": np.where(np.arange(12).reshape(4, 3) == 7, np.nan, 1.0)}, InvalidVector, "row 2"),
    ({"v": np.full((4, 3), np.inf, F32)}, InvalidVector, "row 0"),
    ({"v": np.array([["a"] * 3] * 4)}, FieldTypeError, "numbers"),
    ({"h": np.array([[1, 2], [3, 4], [5, 1e5], [0, 0]])}, InvalidVector, "row 2"),
    ({"i8": np.array([0, 1, 200, 3])}, FieldTypeError, "row 2"),
    ({"i8": np.array([0, 1, 2, 300], np.uint16)}, FieldTypeError, "row 3"),
    ({"i32": np.arange(4.0)}, FieldTypeError, "float64"),
    ({"id": np.ones(4, bool)}, FieldTypeError, "bool"),
    ({"id": np.array([1, 2, 3, 2])}, DuplicateKey, "row 3, field 'id'"),
    ({"f": np.array([0, 1, np.nan, 3])}, InvalidArgument, "row 2"),
    ({"f": np.array([0, 1, 2, 1e39])}, InvalidArgument, "row 3"),
    ({"ok": np.array([0, 1, 1, 0])}, FieldTypeError, "BOOL"),
    ({"bv": np.array([[0, 1, 2, 0, 0, 0, 0, 0]] * 4)}, FieldTypeError, "0/1"),
    ({"bv": np.zeros((4, 3), np.uint8)}, DimensionMismatch, "expected dim 8"),
    ({"nope": [1, 2, 3, 4]}, SchemaError, "unknown field"),
], ids=lambda x: x.__name__ if isinstance(x, type) else None)
def test_bad_columnar_data_raises(cols: dict[str, Any], cls: type[Exception], text: str) -> None:
    data: dict[str, Any] = {"id": np.arange(4), "v": np.ones((4, 3), F32),
                            "h": np.ones((4, 2)), "bv": np.zeros((4, 1), np.uint8),
                            "sp": [{}] * 4}
    data.update(cols)
    with pytest.raises(cls) as exc:
        prepare_batch(small_schema(), data)
    name = next(iter(cols))
    assert f"'{name}'" in str(exc.value) and text in str(exc.value), str(exc.value)


def test_missing_fields_and_dynamic_errors() -> None:
    cs = small_schema()
    with pytest.raises(SchemaError, match=r"row 0, field 'bv'.*missing"):
        prepare_batch(cs, [{"id": 1, "v": [1, 2, 3], "h": [1, 1], "sp": {}}])
    with pytest.raises(SchemaError, match=r"row 2, field 'bv'.*missing"):
        rows = good_rows()
        del rows[2]["bv"]
        prepare_batch(cs, rows)
    with pytest.raises(SchemaError, match=r"row 1, field '\$meta'.*unknown"):
        rows = good_rows()
        rows[1]["$meta"] = {"x": 1}
        prepare_batch(cs, rows)
    dyn = small_schema(dynamic=True)
    with pytest.raises(FieldTypeError, match=r"row 1, field '_meta'.*JSON"):
        rows = good_rows()
        rows[1]["extra"] = object()
        prepare_batch(dyn, rows)
    with pytest.raises(FieldTypeError, match=r"row 0, field '\$meta'.*dict"):
        prepare_batch(dyn, [{**good_rows()[0], "$meta": [1]}])


@pytest.mark.parametrize("data", [[], {}, (), {"id": np.arange(0), "v": np.zeros((0, 3))},
                                  "rows", 5, [1, 2], [{"id": 1}, "x"]])
def test_bad_data_shapes(data: Any) -> None:
    with pytest.raises(InvalidArgument):
        prepare_batch(small_schema(), data)


def test_ragged_columns_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="different lengths"):
        prepare_batch(small_schema(), {"id": [1, 2], "v": np.zeros((3, 3))})


def test_database_error_rolls_back_whole_batch(conn: psycopg.Connection, schema_name: str) -> None:
    cs = small_schema()
    table = make_table(conn, schema_name, cs)
    load(conn, table, prepare_batch(cs, good_rows()))
    rows = [{**r, "id": r["id"] + 10} for r in good_rows()] + [{**good_rows()[1]}]
    with pytest.raises(DuplicateKey) as exc:  # key 1 exists in the table, not in the batch
        load(conn, table, prepare_batch(cs, rows))
    assert isinstance(exc.value.__cause__, psycopg.errors.UniqueViolation)
    assert count(conn, table) == 3
