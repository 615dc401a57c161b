"""Filter expressions: parse errors with positions, and results equal to a Python reference
predicate evaluated on the same rows in a real Postgres."""

from __future__ import annotations

import json
import math
import os
import random
from fractions import Fraction

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecpg
from vecpg import DataType
from vecpg.filters import compile_filter
from vecpg.schema import CollectionSchema

N = 300


def _schema() -> CollectionSchema:
    s = CollectionSchema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("age", DataType.INT32)
    s.add_field("price", DataType.DOUBLE)
    s.add_field("name", DataType.VARCHAR, max_length=30)
    s.add_field("flag", DataType.BOOL)
    s.add_field("opt", DataType.INT64, nullable=True)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    s.add_field("labels", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3,
                max_length=8)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return s


def _rows() -> list[dict]:
    rng = random.Random(5)
    rows = []
    for i in range(N):
        color = rng.choice(["red", "green", "blue", 7, None])  # numbers where strings usually are
        meta = {"color": color, "size": rng.choice([1, 2.5, "big", 10]),
                "list": [rng.randint(0, 5) for _ in range(rng.randint(0, 3))]}
        if i % 7 == 0:
            meta.pop("color")
        row = {"id": i, "age": rng.randint(0, 90), "price": round(rng.uniform(0, 100), 2),
               "name": rng.choice(["alice", "bob", "carol", "dave", "al'x", 'q"t']) + str(i % 5),
               "flag": rng.random() < 0.5, "opt": rng.choice([None, rng.randint(-5, 5)]),
               "meta": meta, "tags": [rng.randint(0, 9) for _ in range(rng.randint(0, 4))],
               "v": [rng.random(), rng.random()],
               "labels": rng.sample(["ml", "db", "ir", "os"], rng.randint(0, 3))}
        if i % 3:
            row["dyn"] = rng.choice(["x", "y", 3])
        rows.append(row)
    return rows


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


CASES = [
    ("age > 50", lambda r: r["age"] > 50),
    ("age >= 10 and age < 20", lambda r: 10 <= r["age"] < 20),
    ("10 <= age < 20", lambda r: 10 <= r["age"] < 20),
    ("age == 3 or age == 4 || age == 5", lambda r: r["age"] in (3, 4, 5)),
    ("not (age > 30)", lambda r: not r["age"] > 30),
    ("!(age > 30) && flag", lambda r: r["age"] <= 30 and r["flag"]),
    ("flag == false", lambda r: r["flag"] is False),
    ("age in [1, 2, 3, 40]", lambda r: r["age"] in (1, 2, 3, 40)),
    ("age not in [1, 2, 3, 40]", lambda r: r["age"] not in (1, 2, 3, 40)),
    ("age in []", lambda r: False),
    ("age in [3, 4.0, 5.5]", lambda r: r["age"] in (3, 4)),
    ("price in [1, 2.5]", lambda r: r["price"] in (1.0, 2.5)),
    ('name in ["alice1", "bob2"]', lambda r: r["name"] in ("alice1", "bob2")),
    ('name like "al%"', lambda r: r["name"].startswith("al")),
    ('name like "%o%"', lambda r: "o" in r["name"]),
    ('name like "bob_"', lambda r: len(r["name"]) == 4 and r["name"].startswith("bob")),
    ("name == \"al'x1\"", lambda r: r["name"] == "al'x1"),
    ("name == 'q\"t2'", lambda r: r["name"] == 'q"t2'),
    ("price * 2 > 150", lambda r: r["price"] * 2 > 150),
    ("age % 7 == 0", lambda r: r["age"] % 7 == 0),
    ("age + price < 30", lambda r: r["age"] + r["price"] < 30),
    ("age / 4 > 10", lambda r: r["age"] / 4 > 10),
    ("-age < -80", lambda r: -r["age"] < -80),
    ("age ** 2 > 6400", lambda r: r["age"] ** 2 > 6400),
    ("opt is null", lambda r: r["opt"] is None),
    ("opt IS NOT NULL and opt > 0", lambda r: r["opt"] is not None and r["opt"] > 0),
    ('meta["color"] == "red"', lambda r: r["meta"].get("color") == "red"),
    ('meta["color"] != "red"', lambda r: isinstance(r["meta"].get("color"), str)
     and r["meta"]["color"] != "red"),
    ('meta["color"] == 7', lambda r: _num(r["meta"].get("color")) == 7),
    ('meta["size"] > 2', lambda r: (_num(r["meta"]["size"]) or 0) > 2),
    ('meta["size"] in [1, "big"]', lambda r: r["meta"]["size"] in (1, "big")),
    ('meta["color"] is null', lambda r: r["meta"].get("color") is None),
    ('meta["list"][0] == 3', lambda r: bool(r["meta"]["list"]) and r["meta"]["list"][0] == 3),
    ('array_contains(meta["list"], 2)', lambda r: 2 in r["meta"]["list"]),
    ('json_contains_all(meta["list"], [1, 2])', lambda r: {1, 2} <= set(r["meta"]["list"])),
    ('json_contains_any(meta["list"], [4, 5])', lambda r: bool({4, 5} & set(r["meta"]["list"]))),
    ('array_length(meta["list"]) == 2', lambda r: len(r["meta"]["list"]) == 2),
    ("array_contains(tags, 3)", lambda r: 3 in r["tags"]),
    ("array_contains_all(tags, [1, 2])", lambda r: {1, 2} <= set(r["tags"])),
    ("ARRAY_CONTAINS_ANY(tags, [8, 9])", lambda r: bool({8, 9} & set(r["tags"]))),
    ("array_length(tags) >= 3", lambda r: len(r["tags"]) >= 3),
    ("tags[0] == 5", lambda r: bool(r["tags"]) and r["tags"][0] == 5),
    ('array_contains(labels, "ml")', lambda r: "ml" in r["labels"]),
    ('array_contains_all(labels, ["ml", "db"])', lambda r: {"ml", "db"} <= set(r["labels"])),
    ('array_contains_any(labels, ["ir", "os"])', lambda r: bool({"ir", "os"} & set(r["labels"]))),
    ('labels[1] == "db"', lambda r: len(r["labels"]) > 1 and r["labels"][1] == "db"),
    ('dyn == "x"', lambda r: r.get("dyn") == "x"),
    ('$meta["dyn"] == 3', lambda r: _num(r.get("dyn")) == 3),
    ("dyn is null", lambda r: r.get("dyn") is None),
    ('(age > 20 and name like "c%") or (flag and price < 10)',
     lambda r: (r["age"] > 20 and r["name"].startswith("c")) or (r["flag"] and r["price"] < 10)),
    ("age > 9223372036854775808", lambda r: False),
    ("TRUE", lambda r: True),
]


def _collection(dsn: str, schema_name: str, name: str, schema, rows):
    """A module fixture's body: collection ``name`` holding ``rows``, dropped afterwards."""
    with vecpg.connect(dsn, schema=schema_name) as client:
        client.drop_collection(name)
        client.create_collection(name, schema=schema)
        client.insert(name, rows)
        yield client, rows
        client.drop_collection(name)


@pytest.fixture(scope="module")
def filter_schema(dsn: str, drop_schema):
    """Schema filter_test, where the module's collections live; dropped after the module."""
    yield "filter_test"
    drop_schema(dsn, "filter_test")


@pytest.fixture(scope="module")
def loaded(dsn: str, filter_schema: str):
    yield from _collection(dsn, filter_schema, "items", _schema(), _rows())


@pytest.mark.parametrize("expr, pred", CASES, ids=[c[0] for c in CASES])
def test_filter_matches_python(loaded, expr, pred) -> None:
    client, rows = loaded
    got = [r["id"] for r in client.query("items", expr, output_fields=["id"])]
    want = [r["id"] for r in rows if pred(r)]
    assert got == want


@pytest.mark.parametrize("expr, position, token", [
    ("age >", 5, ""),
    ("age > 1 )", 8, ")"),
    ("(age > 1", 8, ""),
    ('age == "x"', 7, '"x"'),
    ("name > 3", 7, "3"),
    ("age > 1 and unknownfn(age)", 12, "unknownfn"),
    ("v > 1", 0, "v"),
    ("flag + 1 > 1", 0, "flag"),
    ("age > 1 @ 2", 8, "@"),
    ("age", 0, "age"),
    ("age like 3", 9, "3"),
    ("array_contains(tags, 2.5)", 21, "2.5"),
])
def test_errors_name_token_and_position(expr, position, token) -> None:
    s = _schema()
    with pytest.raises(vecpg.FilterError) as e:
        compile_filter(expr, s)
    assert e.value.position == position, str(e.value)
    assert e.value.token == token, str(e.value)
    assert "^" in str(e.value)


def test_unknown_field_without_dynamic() -> None:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(vecpg.FilterError, match="unknown field 'color'") as e:
        compile_filter('id > 1 and color == "red"', s)
    assert e.value.position == 11


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    s = _schema()
    # parentheses leave no trace in the tree: deep but valid
    deep = compile_filter("(" * 5000 + "age > 1" + ")" * 5000, s)
    assert deep.sql.as_string(None) == compile_filter("age > 1", s).sql.as_string(None)
    with pytest.raises(vecpg.FilterError, match="nests too deeply"):
        compile_filter("not " * 5000 + "flag", s)
    with pytest.raises(vecpg.FilterError, match="longer than"):
        compile_filter("age > 1 and " * 10000 + "flag", s)


def test_values_only_travel_as_parameters() -> None:
    frag = compile_filter('name == "x\'); DROP TABLE items; --" and meta["a\'b"] == 1', _schema())
    text = frag.sql.as_string(None)
    assert "DROP" not in text and "a'b" not in text
    assert "x'); DROP TABLE items; --" in frag.params and "a'b" in frag.params


# -- values at the edges: literals, arrays of every integer width, undefined arithmetic -----

BIG = 2**63 - 1


def _edge_schema() -> CollectionSchema:
    s = CollectionSchema()  # no dynamic field: $meta is an error here
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("n", DataType.INT64)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("meta", DataType.JSON)
    for name, dt in [("i8", DataType.INT8), ("i16", DataType.INT16), ("i32", DataType.INT32),
                     ("i64", DataType.INT64), ("f32", DataType.FLOAT)]:
        s.add_field(name, DataType.ARRAY, element_type=dt, max_capacity=4)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return s


EDGE_N = [0, -4, 4, 9, 1, -1, BIG, -BIG - 1]
EDGE_JSON = [5, "five", 5.0, True, None, 10**400, 6, "x"]


def _edge_rows() -> list[dict]:
    rows = []
    for i, n in enumerate(EDGE_N):
        meta = {"n": EDGE_JSON[i], "list": [1, 2]}
        if i == 4:
            meta.pop("n")
        rows.append({"id": i, "n": n, "d": [0.0, -2.5, 2.5, 1e300, 1.0, -1e-300, 7.25, 3.0][i],
                     "meta": meta, "i8": [i, -i], "i16": [i * 1000], "i32": [i, 2**31 - 1],
                     "i64": [i, BIG], "f32": [float(i), 0.5], "v": [1.0, 0.0]})
    return rows


@pytest.fixture(scope="module")
def edge(dsn: str, filter_schema: str):
    yield from _collection(dsn, filter_schema, "edge", _edge_schema(), _edge_rows())


def _exact(x):
    """The reference's arithmetic result: beyond ±1e308 it is unknown (None)."""
    return None if x is None or abs(x) >= 10**308 else x


def _pow(b, e):
    if b is None or e is None or (b == 0 and e < 0) or (b < 0 and e != int(e)):
        return None
    if b not in (0, 1, -1) and e * math.log10(abs(b)) > 308:
        return None
    return b ** e


def _cmp(x, f):
    return None if x is None else f(x)


def _json_eq(v, lit):
    """Milvus ``==`` on a JSON value: unknown (None) when the JSON type differs."""
    if isinstance(lit, bool) or isinstance(v, bool):
        return v == lit if isinstance(v, bool) and isinstance(lit, bool) else None
    if isinstance(lit, (int, float)):
        return v == lit if isinstance(v, (int, float)) else None
    return v == lit if isinstance(v, str) else None


def _or3(xs):
    xs = list(xs)
    return True if True in xs else None if None in xs else False


def _and3(xs):
    xs = list(xs)
    return False if False in xs else None if None in xs else True


def _not3(x):
    return None if x is None else not x


EDGE_CASES = [
    # item 6: arithmetic is exact; undefined or out-of-range rows are unknown, not an error
    (f"n * {BIG} > 0", lambda r: r["n"] * BIG > 0),
    ("n + n > 0", lambda r: 2 * r["n"] > 0),
    ("-n > 0", lambda r: -r["n"] > 0),
    (f"n + 0 == {BIG}", lambda r: r["n"] == BIG),
    (f"n - 1 == {BIG - 1}", lambda r: r["n"] == BIG),  # no rounding through double
    (f"n * 1 == {BIG - 1}", lambda r: False),
    ("d * 1e300 > 0", lambda r: _cmp(_exact(Fraction(r["d"]) * Fraction(1e300)), lambda x: x > 0)),
    ("d * 1e300 * 1e300 > 0", lambda r: _cmp(_exact(Fraction(r["d"]) * Fraction(1e300) ** 2),
                                             lambda x: x > 0)),
    ("d * 1e300 * 1e300 * 0 == 0", lambda r: True),  # exact: the large partial is no overflow
    ("d / 1e-300 / 1e-300 < 0", lambda r: _cmp(_exact(Fraction(r["d"]) / Fraction(1e-300) ** 2),
                                               lambda x: x < 0)),
    ("n ** 0.5 >= 1", lambda r: _cmp(_pow(r["n"], 0.5), lambda x: x >= 1)),
    ("n ** -1 > 0", lambda r: _cmp(_pow(r["n"], -1), lambda x: x > 0)),
    ("n ** 100000 > 0", lambda r: _cmp(_pow(r["n"], 100000), lambda x: x > 0)),
    ("not (n ** 0.5 >= 1)", lambda r: _not3(_cmp(_pow(r["n"], 0.5), lambda x: x >= 1))),
    ("n / 0 > 0 or n == 4", lambda r: r["n"] == 4),
    ('meta["n"] * 2 > 0', lambda r: _cmp(_exact(_json_num(r)), lambda x: x * 2 > 0)),
    ('meta["n"] > 1.5', lambda r: _cmp(_json_num(r), lambda x: x > 1.5)),
    ('meta["n"] + 0.5 == 5.5', lambda r: _json_num(r) == 5),
    # item 5: values no element can hold, indexes past any end: no match, no error
    ("array_contains(i8, 40000)", lambda r: False),
    ("array_contains(i16, -40000)", lambda r: False),
    ("array_contains(i32, 3000000000)", lambda r: False),
    ("not array_contains(i32, 3000000000)", lambda r: True),
    (f"array_contains(i64, {BIG + 1})", lambda r: False),
    (f"array_contains(i64, {BIG})", lambda r: True),
    ("array_contains_any(i32, [3000000000, 2])", lambda r: r["id"] == 2),
    ("array_contains_any(i16, [99999, -99999])", lambda r: False),
    ("array_contains_all(i32, [2, 3000000000])", lambda r: False),
    ("array_contains_all(i32, [2, 2147483647])", lambda r: r["id"] == 2),
    ("array_contains(f32, 1e300)", lambda r: False),
    ("array_contains(f32, 1e-300)", lambda r: False),
    ("array_contains_any(f32, [1e300, 3])", lambda r: r["id"] == 3),
    ("i64[99999999999] == 1", lambda r: False),
    ("i64[99999999999] is null", lambda r: True),
    ("i64[1] == 9223372036854775807", lambda r: True),
    ('meta["list"][99999999999] == 1', lambda r: False),
    ('meta["list"][' + "9" * 5000 + "] == 1", lambda r: False),
    # item 7: in / not in are an OR / AND of == / !=
    ('meta["n"] in [5]', lambda r: _or3(_json_eq(r["meta"].get("n"), x) for x in [5])),
    ('meta["n"] not in [5]', lambda r: _and3(_not3(_json_eq(r["meta"].get("n"), x)) for x in [5])),
    ('meta["n"] != 5', lambda r: _not3(_json_eq(r["meta"].get("n"), 5))),
    ('meta["n"] not in [5, "x"]',
     lambda r: _and3(_not3(_json_eq(r["meta"].get("n"), x)) for x in [5, "x"])),
    ('meta["n"] in [6, "x", true]',
     lambda r: _or3(_json_eq(r["meta"].get("n"), x) for x in [6, "x", True])),
    ('not (meta["n"] in ["five"])',
     lambda r: _not3(_or3(_json_eq(r["meta"].get("n"), x) for x in ["five"]))),
    ('meta["n"] not in ["five", "x"]',
     lambda r: _and3(_not3(_json_eq(r["meta"].get("n"), x)) for x in ["five", "x"])),
    ('meta["n"] not in [true]', lambda r: _not3(_json_eq(r["meta"].get("n"), True))),
    ('meta["n"] in [5.0, 10]', lambda r: _or3(_json_eq(r["meta"].get("n"), x) for x in [5, 10])),
    # item 8: a two-sided range in one direction
    ("9 >= n > -1", lambda r: -1 < r["n"] <= 9),
    ("-1 <= n < 9", lambda r: -1 <= r["n"] < 9),
    # a literal as long as allowed is exact
    ("n < 1" + "0" * 998, lambda r: True),
]


def _json_num(r):
    v = r["meta"].get("n")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@pytest.mark.parametrize("expr, pred", EDGE_CASES, ids=[c[0][:60] for c in EDGE_CASES])
def test_edge_values_match_python(edge, expr, pred) -> None:
    client, rows = edge
    got = [r["id"] for r in client.query("edge", expr, output_fields=["id"])]
    want = [r["id"] for r in rows if pred(r) is True]
    assert got == want


def test_arithmetic_leaves_plain_comparisons_indexable(edge, dsn) -> None:
    """Arithmetic runs on numeric, but ``n > 3`` stays a bigint comparison a btree serves."""
    frag = compile_filter("n > 3", _edge_schema())
    assert frag.sql.as_string(None) == '(("n" > %s::bigint))'
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX IF NOT EXISTS edge_n ON filter_test.edge (n)")
        conn.execute("SET enable_seqscan = off")
        q = psycopg.sql.SQL("EXPLAIN SELECT id FROM filter_test.edge WHERE {}").format(frag.sql)
        plan = "\n".join(r[0] for r in conn.execute(q, frag.params))
    assert "edge_n" in plan, plan


@pytest.mark.parametrize("expr, position, token", [
    ("age > " + "9" * 5000, 6, "9" * 5000),  # int() refuses > 4300 digits
    ("price < 1e400", 8, "1e400"),
    ('name like "ab\\\\"', 10, '"ab\\\\"'),  # the pattern is ab\ : LIKE would fail
    ("1 < age > 5", 8, ">"),
    ("5 > age < 9", 8, "<"),
    ("1 == age == 1", 9, "=="),
    ("1 < age < 5 < 9", 12, "<"),
    ("array_contains(tags, 2, 3)", 0, "array_contains"),
])
def test_static_errors_point_at_the_token(expr, position, token) -> None:
    with pytest.raises(vecpg.FilterError) as e:
        compile_filter(expr, _schema())
    assert (e.value.position, e.value.token) == (position, token), str(e.value)


@pytest.mark.parametrize("expr", [
    'name == "\\ud800"', 'name == "\ud800"', 'name == "a\\0b"', 'name == "a\x00b"',
    'name == "a\\x00"', 'meta["\\udfff"] == 1', 'name like "\\ud800%"', 'name in ["\\ud800"]',
    'age > 1 \x00',
])
def test_nul_and_lone_surrogates_are_filter_errors(loaded, expr) -> None:
    client, _ = loaded
    with pytest.raises(vecpg.FilterError) as e:
        client.query("items", expr, output_fields=["id"])
    str(e.value).encode("utf-8")  # the message itself can be printed and logged


def test_meta_needs_dynamic_fields(edge) -> None:
    client, _ = edge
    with pytest.raises(vecpg.FilterError, match="dynamic fields") as e:
        client.query("edge", 'n > 1 and $meta["k"] == 1', output_fields=["id"])
    assert (e.value.position, e.value.token) == (10, "$meta")


def test_long_flat_chains_run(loaded) -> None:
    client, rows = loaded
    ages = list(range(1000))
    cases = [
        (" or ".join(f"age == {a}" for a in ages[:999]) + " or flag", lambda r: True),
        (" and ".join(["age >= 0"] * 1000), lambda r: True),
        (" || ".join(f"age == {a}" for a in range(0, 2000, 2)), lambda r: r["age"] % 2 == 0),
        (" + ".join(["age"] * 500 + ["1"] * 500) + " > 20000",
         lambda r: 500 * r["age"] + 500 > 20000),
        (" - ".join(["age"] + ["1"] * 999) + " >= 0", lambda r: r["age"] >= 999),
        (" * ".join(["price"] + ["1"] * 999) + " > 50", lambda r: r["price"] > 50),
        (" * ".join(["age"] * 300) + " > 1", lambda r: 1 < r["age"] ** 300 < 10**308),
    ]
    # and / or alternating 150 levels deep (under MAX_DEPTH): nested SQL that still runs
    deep = "flag"
    for i in range(150):
        deep = f"age > {i} {('and', 'or')[i % 2]} ({deep})"

    def deep_pred(r: dict) -> bool:
        value = r["flag"]
        for i in range(150):
            value = (r["age"] > i and value) if i % 2 == 0 else (r["age"] > i or value)
        return value

    cases.append((deep, deep_pred))
    for expr, pred in cases:
        got = [r["id"] for r in client.query("items", expr, output_fields=["id"])]
        assert got == [r["id"] for r in rows if pred(r)], expr[:80]


def test_genuinely_deep_nesting_is_an_error(loaded) -> None:
    s = _schema()
    ops = ["and", "or"]
    alternating = "".join(f"age > {i} {ops[i % 2]} (" for i in range(1000)) + "flag" + ")" * 1000
    arith = "(" * 1000 + "age" + "".join(f" {'+*'[i % 2]} 1)" for i in range(1000)) + " > 1"
    power = " ** ".join(["age"] * 1000) + " > 1"  # right-associative: nests
    for expr in (alternating, arith, power):
        with pytest.raises(vecpg.FilterError, match="nests too deeply"):
            compile_filter(expr, s)
    # just under the limit, the nested SQL still runs (rendered flat: no RecursionError)
    client, rows = loaded
    def value(r: dict) -> int:
        x = r["age"]
        for i in range(190):
            x = x + i % 3 if i % 2 == 0 else x * (i % 3 + 1)
        return x

    cut = sorted(value(r) for r in rows)[N // 2]
    ok = "(" * 190 + "age" + "".join(f" {'+*'[i % 2]} {i % 3 + i % 2})" for i in range(190))
    got = [r["id"] for r in client.query("items", f"{ok} > {cut}", output_fields=["id"])]
    assert got == [r["id"] for r in rows if value(r) > cut]
    assert 0 < len(got) < N


# -- property test: any expression the grammar accepts runs without a server error ---------


_num_atom = st.sampled_from(["age", "price", "opt", 'meta["size"]', "dyn", "array_length(tags)",
                             'meta["list"][0]', "tags[1]", "0", "3", "-2.5", "1e2"])
_str_atom = st.sampled_from(["name", 'meta["color"]', 'dyn', '"al%"', "'x'", '"q\\"t"'])


@st.composite
def _numeric(draw, depth: int = 0):
    if depth > 2 or draw(st.booleans()):
        return draw(_num_atom)
    op = draw(st.sampled_from(["+", "-", "*", "/", "%", "**"]))
    return f"({draw(_numeric(depth + 1))} {op} {draw(_numeric(depth + 1))})"


@st.composite
def _condition(draw, depth: int = 0):
    kind = draw(st.integers(0, 8 if depth < 3 else 5))
    if kind == 0:
        return f"{draw(_numeric())} {draw(st.sampled_from(['==', '!=', '<', '<=', '>', '>=']))} " \
               f"{draw(_numeric())}"
    if kind == 1:
        return f"{draw(_str_atom)} {draw(st.sampled_from(['==', '!=', '<']))} {draw(_str_atom)}"
    if kind == 2:
        pattern = draw(st.sampled_from(['"a%"', '"%1"', '"_o%"']))
        return f"{draw(_str_atom)} like {pattern}"
    if kind == 3:
        items = draw(st.lists(st.sampled_from(["1", "2", "3.5", '"red"', '"x"']), max_size=3))
        neg = draw(st.sampled_from(["in", "not in"]))
        left = draw(st.sampled_from(["age", 'meta["color"]', "dyn", "name"]))
        return f"{left} {neg} [{', '.join(items)}]"
    if kind == 4:
        return draw(st.sampled_from(["flag", "opt is null", 'meta["x"] is not null',
                                     "array_contains(tags, 3)", 'json_contains(meta["list"], 2)',
                                     "array_contains_any(tags, [1, 9])", "TRUE", "false"]))
    if kind == 5:
        return f"{draw(_numeric())} < age < {draw(_numeric())}"
    if kind == 6:
        return f"not ({draw(_condition(depth + 1))})"
    op = draw(st.sampled_from(["and", "or", "&&", "||"]))
    return f"({draw(_condition(depth + 1))} {op} {draw(_condition(depth + 1))})"


# fixed examples in CI (no flaky runs); new ones on every developer run
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=bool(os.environ.get("CI")), database=None)
@given(expr=_condition())
def test_random_expressions_compile_and_run(loaded, expr: str) -> None:
    client, _ = loaded
    try:
        client.query("items", expr, output_fields=["id"], limit=5)
    except vecpg.FilterError as e:
        # a type error the compiler names is fine; any error from the server is not, not
        # even arithmetic that overflows or has no real result on some row's values
        assert e.__cause__ is None, repr(e.__cause__)


# -- property test against a Python evaluator: exact arithmetic, three-valued logic -------
# Integers and short decimals only (no / or fractional powers), so numeric's rounding never
# decides a comparison; the reference treats unknown (None) like SQL NULL.


def _pg_mod(a, b):
    if a is None or b is None or b == 0:
        return None
    q = abs(a) // abs(b)
    return a - (q if (a >= 0) == (b >= 0) else -q) * b  # truncating, like numeric %


def _arith(op, a, b):
    if a is None or b is None:
        return None
    if op == "%":
        return _exact(_pg_mod(a, b))
    if op == "**":
        return _exact(_pow(a, b))
    return _exact({"+": a + b, "-": a - b, "*": a * b}[op])


def _json_number(v):
    return Fraction(repr(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


_ATOMS = [
    ("age", lambda r: r["age"]), ("opt", lambda r: r["opt"]),
    ("price", lambda r: Fraction(repr(r["price"]))),
    ('meta["size"]', lambda r: _json_number(r["meta"]["size"])),
    ("dyn", lambda r: _json_number(r.get("dyn"))),
    ("array_length(tags)", lambda r: len(r["tags"])),
    ("tags[1]", lambda r: r["tags"][1] if len(r["tags"]) > 1 else None),
    ('meta["list"][0]', lambda r: r["meta"]["list"][0] if r["meta"]["list"] else None),
    ("0", lambda r: 0), ("3", lambda r: 3), ("(-2)", lambda r: -2),
    ("2.5", lambda r: Fraction(5, 2)),
    (str(BIG), lambda r: BIG), ("99999999999999999999", lambda r: 99999999999999999999),
]


_JSON_ATOMS = ('meta["size"]', "dyn", 'meta["list"][0]')


@st.composite
def _int_numeric(draw, depth: int = 0):
    if depth > 2 or draw(st.booleans()):
        return draw(st.sampled_from(_ATOMS))
    op = draw(st.sampled_from(["+", "-", "*", "%", "**"]))
    (ta, fa), (tb, fb) = draw(_int_numeric(depth + 1)), draw(_int_numeric(depth + 1))
    if op == "**":  # small whole exponents, negative bases allowed
        e = draw(st.integers(0, 3))
        tb, fb = str(e), (lambda r, e=e: e)
    return f"({ta} {op} {tb})", lambda r: _arith(op, fa(r), fb(r))


_CMP = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _both(f, a, b):
    return None if a is None or b is None else f(a, b)


@st.composite
def _int_condition(draw, depth: int = 0):
    kind = draw(st.integers(0, 6 if depth < 3 else 3))
    if kind == 0:
        op = draw(st.sampled_from(list(_CMP)))
        (ta, fa), (tb, fb) = draw(_int_numeric()), draw(_int_numeric())
        if ta in _JSON_ATOMS and tb in _JSON_ATOMS:  # that would compare JSON values as JSON
            tb = f"({tb} + 0)"
        return f"{ta} {op} {tb}", lambda r: _both(_CMP[op], fa(r), fb(r))
    if kind == 1:
        path, get = draw(st.sampled_from([('meta["color"]', lambda r: r["meta"].get("color")),
                                          ("dyn", lambda r: r.get("dyn"))]))
        items = draw(st.lists(st.sampled_from([1, 3, 7, 2.5, "red", "x", True]), max_size=3))
        neg = draw(st.booleans())
        text = ", ".join(json.dumps(v) for v in items)
        if neg:
            return f"{path} not in [{text}]", lambda r: _and3(
                _not3(_json_eq(get(r), v)) for v in items)
        return f"{path} in [{text}]", lambda r: _or3(_json_eq(get(r), v) for v in items)
    if kind == 2:
        lo, hi = draw(st.integers(-5, 95)), draw(st.integers(-5, 95))
        a, b = draw(st.sampled_from([("<", "<"), ("<=", "<"), ("<", "<="), ("<=", "<=")]))
        if draw(st.booleans()):
            return f"{lo} {a} age {b} {hi}", lambda r: (_CMP[a](lo, r["age"])
                                                        and _CMP[b](r["age"], hi))
        ra, rb = {"<": ">", "<=": ">="}[a], {"<": ">", "<=": ">="}[b]
        return f"{hi} {ra} age {rb} {lo}", lambda r: (_CMP[ra](hi, r["age"])
                                                      and _CMP[rb](r["age"], lo))
    if kind == 3:
        return draw(st.sampled_from([("flag", lambda r: r["flag"]),
                                     ("opt is null", lambda r: r["opt"] is None),
                                     ("opt is not null", lambda r: r["opt"] is not None)]))
    if kind == 4:
        t, f = draw(_int_condition(depth + 1))
        return f"not ({t})", lambda r: _not3(f(r))
    (ta, fa), (tb, fb) = draw(_int_condition(depth + 1)), draw(_int_condition(depth + 1))
    if kind == 5:
        return f"({ta} and {tb})", lambda r: _and3([fa(r), fb(r)])
    return f"({ta} or {tb})", lambda r: _or3([fa(r), fb(r)])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=bool(os.environ.get("CI")), database=None)
@given(case=_int_condition())
def test_random_expressions_match_python(loaded, case) -> None:
    client, rows = loaded
    expr, pred = case
    got = [r["id"] for r in client.query("items", expr, output_fields=["id"])]
    assert got == [r["id"] for r in rows if pred(r) is True], expr
