"""Milvus filter grammar beyond the basics: bitwise and shift operators, number literals in
every base, raw strings, whole-array equality, ``exists`` and ``{name}`` templates. Each
result is checked against a Python reference evaluated over the same rows in a real Postgres
(None stands for SQL's unknown, which never matches)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

import vecpg
from vecpg import DataType
from vecpg.filters import compile_filter
from vecpg.schema import CollectionSchema

SCHEMA = "filter_grammar_test"
BIG = 2**63 - 1
EVIL = "x'); DROP TABLE grammar; --"


def _schema() -> CollectionSchema:
    s = CollectionSchema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.INT64)
    s.add_field("b", DataType.INT32)
    s.add_field("price", DataType.DOUBLE)
    s.add_field("name", DataType.VARCHAR, max_length=64)
    s.add_field("flag", DataType.BOOL)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    s.add_field("labels", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3,
                max_length=8)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return s


_MISSING = object()
_A_FIXED = [BIG, -BIG - 1, 0, -1, 1, 2, 5, 15, 17, 31, 2**62, -(2**62), 255, 7, -7]
_B_FIXED = [3, 6, 15, 17, 5, 0, -1, -50, 50, 31, 8, 1, 2, -3, 6]
_NAMES = ["alice", "al%ce", "a\\b", "a\\\\b", "x%y", "x\\%y", 'q\\"t', EVIL, "bob"]
_JSON_N = [5, 4.0, 2.5, "7", True, None, 10**30, -3, 12, 0, _MISSING]
_JSON_ARR = [[1, 2], [2, 1], ["x", "y"], [], [1, [2]], "x", 3, [1, 2, 3], [3, 1], _MISSING]
_TAGS = [[], [1, 2], [2, 1], [1, 2, 3], [3], [0, 9]]
_LABELS = [[], ["ml", "db"], ["db", "ml"], ["ml"]]


def _rows() -> list[dict[str, Any]]:
    rng = random.Random(11)
    rows = []
    for i in range(160):
        a = _A_FIXED[i] if i < len(_A_FIXED) else rng.randint(-10**6, 10**6)
        b = _B_FIXED[i] if i < len(_B_FIXED) else rng.randint(-50, 50)
        meta: dict[str, Any] = {}
        for key, choices in (("n", _JSON_N), ("arr", _JSON_ARR)):
            value = choices[i % len(choices)] if i < 40 else rng.choice(choices)
            if value is not _MISSING:
                meta[key] = value
        k = rng.choice([_MISSING, None, {"x": 1}, {"x": None}, {"y": 2}, 4])
        if k is not _MISSING:
            meta["k"] = k
        if i % 5 == 0:
            meta["k\\x"] = 1  # a key with a backslash, for raw strings
        row: dict[str, Any] = {
            "id": i, "a": a, "b": b,
            "price": 12.0 if i == 3 else round(rng.uniform(-50, 50), 2),
            "name": _NAMES[i % len(_NAMES)], "flag": i % 2 == 0, "meta": meta,
            "tags": _TAGS[i % len(_TAGS)], "labels": _LABELS[i % len(_LABELS)],
            "v": [rng.random(), rng.random()]}
        d = rng.choice([_MISSING, None, 3, 6, 7.5, "s", [1]])
        if d is not _MISSING:
            row["d"] = d  # a dynamic field
        rows.append(row)
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def db(dsn: str, drop_schema: Callable[[str, str], None]) -> Iterator[psycopg.Connection]:
    """Collection ``grammar`` holding ROWS; a connection to query its table directly."""
    drop_schema(dsn, SCHEMA)
    with vecpg.connect(dsn, schema=SCHEMA) as client:
        client.create_collection("grammar", schema=_schema())
        client.insert("grammar", ROWS)
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield conn
        client.drop_collection("grammar")
    drop_schema(dsn, SCHEMA)


def _ids(conn: psycopg.Connection, expr: str, params: dict[str, Any] | None = None) -> list[int]:
    frag = compile_filter(expr, _schema(), params=params)
    q = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id").format(
        sql.Identifier(SCHEMA, "grammar"), frag.sql)
    return [r[0] for r in conn.execute(q, frag.params)]


def _want(pred: Callable[[dict[str, Any]], Any]) -> list[int]:
    return [r["id"] for r in ROWS if pred(r) is True]


# -- Python reference: int64 bit operations and JSON typing ---------------------------------

def _in64(x: int | None) -> int | None:
    return x if x is not None and -2**63 <= x < 2**63 else None


def _jint(v: Any) -> int | None:
    """A JSON value as a bitwise operand: a whole number within int64, else unknown."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float) and not v.is_integer():
        return None
    return _in64(int(v))


def _meta_n(r: dict[str, Any]) -> int | None:
    return _jint(r["meta"].get("n"))


def _op(f: Callable[..., Any], *xs: Any) -> Any:
    return None if any(x is None for x in xs) else f(*xs)


def _shl(x: int | None, c: int | None) -> int | None:
    return None if x is None or c is None or c < 0 else _in64(x << c)


def _shr(x: int | None, c: int | None) -> int | None:
    return None if x is None or c is None or c < 0 else x >> c


def _not3(x: Any) -> Any:
    return None if x is None else not x


def _cmp(x: Any, f: Callable[[Any], bool]) -> Any:
    return None if x is None else f(x)


BIT_CASES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("(a & 0xFF) == 7", lambda r: r["a"] & 255 == 7),
    ("(a | b) > 100", lambda r: (r["a"] | r["b"]) > 100),
    ("(a ^ b) < 0", lambda r: (r["a"] ^ r["b"]) < 0),
    ("~a == b", lambda r: ~r["a"] == r["b"]),
    ("(a & b & 0b111) != 0", lambda r: r["a"] & r["b"] & 7 != 0),
    # | is looser than ^, which is looser than &
    ("(b | a ^ a & 6) > 10", lambda r: (r["b"] | (r["a"] ^ (r["a"] & 6))) > 10),
    ("(b | 6 ^ 6) == b", lambda r: True),  # b | 0, not (b | 6) ^ 6
    ("(b ^ 6 & 0) == b", lambda r: True),  # b ^ 0, not (b ^ 6) & 0
    ("(b | 6 & 0) == b", lambda r: True),  # b | 0, not (b | 6) & 0
    # << and >> are looser than + and -, tighter than & and than in
    ("(b & 3 + 1) == 4", lambda r: r["b"] & 4 == 4),
    ("b + 1 << 1 == 8", lambda r: (r["b"] + 1) << 1 == 8),
    ("b << 1 in [4, 6, 30]", lambda r: r["b"] << 1 in (4, 6, 30) if r["b"] >= 0 else False),
    ("~b + 1 == -b", lambda r: True),  # ~ binds tighter than +
    ("(-b >> 1) == -2", lambda r: (-r["b"]) >> 1 == -2),
    ("a > ~0", lambda r: r["a"] > -1),
    # shifts are exact on int64: out of range or a negative count is unknown
    ("(a << 2) > 100", lambda r: _cmp(_shl(r["a"], 2), lambda x: x > 100)),
    ("not ((a << 1) > 0)", lambda r: _not3(_cmp(_shl(r["a"], 1), lambda x: x > 0))),
    ("(a << 63) == 0", lambda r: _shl(r["a"], 63) == 0),
    ("(a << 63) < 0", lambda r: _cmp(_shl(r["a"], 63), lambda x: x < 0)),
    ("(a >> 100) == -1", lambda r: r["a"] < 0),
    ("(a >> 3) == -1", lambda r: r["a"] >> 3 == -1),
    ("(b << b) > 0", lambda r: _cmp(_shl(r["b"], r["b"]), lambda x: x > 0)),
    ("not ((b >> b) >= 0)", lambda r: _not3(_cmp(_shr(r["b"], r["b"]), lambda x: x >= 0))),
    # JSON operands: whole numbers within int64 only, the rest unknown
    ('(meta["n"] & 1) == 1', lambda r: _cmp(_meta_n(r), lambda x: x & 1 == 1)),
    ('not ((meta["n"] & 1) == 1)', lambda r: _not3(_cmp(_meta_n(r), lambda x: x & 1 == 1))),
    ('(meta["n"] | 0) == meta["n"] + 0', lambda r: _cmp(_meta_n(r), lambda x: True)),
    ("(d ^ 1) == 2", lambda r: _cmp(_jint(r.get("d")), lambda x: x ^ 1 == 2)),
    ('((meta["n"] * 2) | 1) == 9', lambda r: _cmp(_meta_n(r), lambda x: (2 * x) | 1 == 9)),
    ('((meta["n"] * 2) | 1) == 5', lambda r: r["meta"].get("n") == 2.5),  # 2.5 * 2 is whole
    ("((a + 1) & 1) == 0", lambda r: _cmp(_in64(r["a"] + 1), lambda x: x & 1 == 0)),
    ("((b ** 2) & 3) == 1", lambda r: (r["b"] ** 2) & 3 == 1),
    ("(array_length(tags) << 1) >= 4", lambda r: len(r["tags"]) * 2 >= 4),
    ("(tags[0] & 1) == 1", lambda r: bool(r["tags"]) and r["tags"][0] & 1 == 1),
]


@pytest.mark.parametrize("expr, pred", BIT_CASES, ids=[c[0] for c in BIT_CASES])
def test_bitwise_and_shift_match_python(db, expr, pred) -> None:
    assert _ids(db, expr) == _want(pred)


def test_bitwise_cases_are_selective() -> None:
    """A case matching every row or none would pass whatever the operator did (but for
    identities, and a negation of unknowns, which must match nothing)."""
    trivial = {"~b + 1 == -b", '(meta["n"] | 0) == meta["n"] + 0', "not ((b >> b) >= 0)",
               "(b | 6 ^ 6) == b", "(b ^ 6 & 0) == b", "(b | 6 & 0) == b"}
    for expr, pred in BIT_CASES:
        n = len(_want(pred))
        assert expr in trivial or 0 < n < len(ROWS), (expr, n)


NUMBER_CASES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("a == 0x1F", lambda r: r["a"] == 31),
    ("a == 0XfF", lambda r: r["a"] == 255),
    ("b == 017", lambda r: r["b"] == 15),  # a leading zero is octal, as in Milvus (not 17)
    ("b == 0o17", lambda r: r["b"] == 15),
    ("b == 0b101", lambda r: r["b"] == 5),
    ("b == 0x11", lambda r: r["b"] == 17),
    ("b == 00", lambda r: r["b"] == 0),
    ("b == 017.0", lambda r: r["b"] == 17),  # a float is decimal whatever its zeros
    ("price == 0x1.8p3", lambda r: r["price"] == 12.0),
    ("a == 0x7FFFFFFFFFFFFFFF", lambda r: r["a"] == BIG),
    ("a == -0x8000000000000000", lambda r: r["a"] == -BIG - 1),
    ("b in [0b11, 0o6, 0x0F,]", lambda r: r["b"] in (3, 6, 15)),
]


@pytest.mark.parametrize("expr, pred", NUMBER_CASES, ids=[c[0] for c in NUMBER_CASES])
def test_number_literals_match_python(db, expr, pred) -> None:
    want = _want(pred)
    assert want
    assert _ids(db, expr) == want


STRING_CASES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    (r'name == r"a\b"', lambda r: r["name"] == "a\\b"),
    (r'name == "a\\b"', lambda r: r["name"] == "a\\b"),
    (r"name == r'a\\b'", lambda r: r["name"] == "a\\\\b"),
    (r'name == R"q\"t"', lambda r: r["name"] == 'q\\"t'),  # \" does not end it, and stays
    (r'name like r"x\%%"', lambda r: r["name"].startswith("x%")),
    (r'name like r"%\\%"', lambda r: "\\" in r["name"]),
    (r'name like "%\\\\%"', lambda r: "\\" in r["name"]),
    (r'name like r"al\%ce"', lambda r: r["name"] == "al%ce"),
    (r'meta[r"k\x"] == 1', lambda r: r["meta"].get("k\\x") == 1),
    (r'r"a\b" == name or name == r"bob"', lambda r: r["name"] in ("a\\b", "bob")),
]


@pytest.mark.parametrize("expr, pred", STRING_CASES, ids=[c[0] for c in STRING_CASES])
def test_raw_strings_match_python(db, expr, pred) -> None:
    want = _want(pred)
    assert want
    assert _ids(db, expr) == want


def _json_list_eq(v: Any, lst: list[Any]) -> Any:
    """JSON == list: equal arrays only (numbers by value); not an array: unknown."""
    return v == lst if isinstance(v, list) else None


ARRAY_CASES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("tags == [1, 2]", lambda r: r["tags"] == [1, 2]),
    ("tags != [1, 2]", lambda r: r["tags"] != [1, 2]),
    ("[2, 1] == tags", lambda r: r["tags"] == [2, 1]),
    ("tags == []", lambda r: r["tags"] == []),
    ("tags == [1, 99999999999999999999]", lambda r: False),
    ("tags != [1, 99999999999999999999]", lambda r: True),
    ('labels == ["ml", "db"]', lambda r: r["labels"] == ["ml", "db"]),
    ('labels != ["ml"]', lambda r: r["labels"] != ["ml"]),
    ('meta["arr"] == [1, 2]', lambda r: _json_list_eq(r["meta"].get("arr"), [1, 2])),
    ('meta["arr"] != [1, 2]', lambda r: _not3(_json_list_eq(r["meta"].get("arr"), [1, 2]))),
    ('not (meta["arr"] == [1, 2])',
     lambda r: _not3(_json_list_eq(r["meta"].get("arr"), [1, 2]))),
    ('meta["arr"] == ["x", "y"]', lambda r: _json_list_eq(r["meta"].get("arr"), ["x", "y"])),
    ('meta["arr"] == [1, [2]]', lambda r: _json_list_eq(r["meta"].get("arr"), [1, [2]])),
    ('meta["arr"] == [1.0, 2]', lambda r: _json_list_eq(r["meta"].get("arr"), [1, 2])),
    ('meta["arr"] == []', lambda r: _json_list_eq(r["meta"].get("arr"), [])),
    ("d == [1]", lambda r: _json_list_eq(r.get("d"), [1])),
    # Milvus' json_* and array_* functions take ARRAY and JSON fields alike
    ("json_contains(tags, 3)", lambda r: 3 in r["tags"]),
    ("json_contains_any(tags, [2, 9],)", lambda r: bool({2, 9} & set(r["tags"]))),
    ('json_contains_all(labels, ["ml", "db"])', lambda r: {"ml", "db"} <= set(r["labels"])),
]


@pytest.mark.parametrize("expr, pred", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_array_equality_matches_python(db, expr, pred) -> None:
    assert _ids(db, expr) == _want(pred)


def _has_path(doc: Any, *keys: Any) -> bool:
    for k in keys:
        in_object = isinstance(k, str) and isinstance(doc, dict) and k in doc
        in_array = isinstance(k, int) and isinstance(doc, list) and k < len(doc)
        if not (in_object or in_array):
            return False
        doc = doc[k]
    return True


EXISTS_CASES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ('exists meta["k"]', lambda r: "k" in r["meta"]),
    ('not exists meta["k"]', lambda r: "k" not in r["meta"]),
    ('EXISTS meta["k"]["x"]', lambda r: _has_path(r["meta"], "k", "x")),
    ('exists meta["arr"][0]', lambda r: _has_path(r["meta"], "arr", 0)),  # not on "x" or 3
    ('meta["arr"][0] == 3', lambda r: _has_path(r["meta"], "arr", 0)
     and r["meta"]["arr"][0] == 3),
    ("exists d", lambda r: "d" in r),
    ('exists $meta["d"] and not exists meta["n"]', lambda r: "d" in r and "n" not in r["meta"]),
    # a key whose value is JSON null exists, but is null
    ('exists meta["k"] and meta["k"] is null', lambda r: "k" in r["meta"]
     and r["meta"]["k"] is None),
    ('exists meta["k"]["x"] and meta["k"]["x"] is not null',
     lambda r: _has_path(r["meta"], "k", "x") and r["meta"]["k"]["x"] is not None),
]


@pytest.mark.parametrize("expr, pred", EXISTS_CASES, ids=[c[0] for c in EXISTS_CASES])
def test_exists_matches_python(db, expr, pred) -> None:
    want = _want(pred)
    assert 0 < len(want) < len(ROWS)
    assert _ids(db, expr) == want


TEMPLATE_CASES: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any]]] = [
    ("a > {lo} and a < {hi}", {"lo": -5, "hi": 40}, lambda r: -5 < r["a"] < 40),
    ("id in {ids}", {"ids": [3, 5, 8, 1000]}, lambda r: r["id"] in (3, 5, 8)),
    ("id not in {ids}", {"ids": (3, 5)}, lambda r: r["id"] not in (3, 5)),
    ("id in {ids}", {"ids": np.array([4, 9], dtype=np.int64)}, lambda r: r["id"] in (4, 9)),
    ("id == {i}", {"i": np.int64(7)}, lambda r: r["id"] == 7),
    ("id in {ids}", {"ids": []}, lambda r: False),
    ("b in [{x}, 3]", {"x": 6}, lambda r: r["b"] in (6, 3)),
    ("price > {f} or b == {f}", {"f": 45.5}, lambda r: r["price"] > 45.5),
    ("flag == {yes}", {"yes": True}, lambda r: r["flag"] is True),
    ("name like {p}", {"p": "al%"}, lambda r: r["name"].startswith("al")),
    ("name == {n}", {"n": EVIL}, lambda r: r["name"] == EVIL),
    ('meta["n"] == {v}', {"v": 4}, lambda r: r["meta"].get("n") == 4
     and not isinstance(r["meta"].get("n"), bool)),
    ("array_contains_any(tags, {xs})", {"xs": [9, 3]}, lambda r: bool({9, 3} & set(r["tags"]))),
    ("tags == {t}", {"t": [2, 1]}, lambda r: r["tags"] == [2, 1]),
    ('meta["arr"] == {t}', {"t": [1, [2]]}, lambda r: r["meta"].get("arr") == [1, [2]]),
    ("(a & {m}) == {m}", {"m": 7, "unused": object()}, lambda r: r["a"] & 7 == 7),
    ("a == {big}", {"big": 2**64}, lambda r: False),
]


@pytest.mark.parametrize("expr, params, pred", TEMPLATE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TEMPLATE_CASES)])
def test_templates_match_python(db, expr, params, pred) -> None:
    assert _ids(db, expr, params) == _want(pred)


def test_template_values_are_bound_parameters(db, dsn: str) -> None:
    """A value holding a quote and SQL text is a parameter: matched literally, never SQL."""
    frag = compile_filter("name == {n} or name like {p}", _schema(),
                          params={"n": EVIL, "p": "%'; SELECT 1; --"})
    text = frag.sql.as_string(None)
    assert "DROP" not in text and "SELECT" not in text and "'%" not in text
    assert EVIL in frag.params and "%'; SELECT 1; --" in frag.params
    assert _ids(db, "name == {n} or name like {p}",
                {"n": EVIL, "p": "%'; SELECT 1; --"}) == _want(lambda r: r["name"] == EVIL)
    # the fixture's DSN: connection.info.dsn leaves the password out
    with psycopg.connect(dsn) as c:  # the table is still there
        assert c.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(SCHEMA, "grammar"))).fetchone() == (len(ROWS),)


def test_same_template_text_different_values_same_sql() -> None:
    """The SQL depends on the expression only (plans can be shared); values differ."""
    s = _schema()
    one = compile_filter("a > {x}", s, params={"x": 1})
    two = compile_filter("a > {x}", s, params={"x": 2})
    assert one.sql.as_string(None) == two.sql.as_string(None)
    assert (one.params, two.params) == ([1], [2])


def test_existing_callers_keep_working() -> None:
    s = _schema()
    assert compile_filter("a > 1", s).params == [1]
    qualified = compile_filter("a > 1", s, qualifier="t")
    assert qualified.sql.as_string(None) == '(("t"."a" > %s::bigint))'
    assert compile_filter("", s, params={"x": 1}).sql.as_string(None) == "TRUE"


def _nested(depth: int) -> list[Any]:
    out: list[Any] = [1]
    for _ in range(depth):
        out = [out]
    return out


@pytest.mark.parametrize("expr, params, match", [
    ("a > {nope}", {"x": 1}, r"no value for placeholder \{nope\}"),
    ("a > {x}", None, r"placeholder \{x\}"),
    ("a > {x}", {"x": None}, "NoneType"),
    ("a > {x}", {"x": {"k": 1}}, "dict"),
    ("a in {x}", {"x": {1, 2}}, "set"),
    ("name == {x}", {"x": b"bytes"}, "bytes"),
    ("price > {x}", {"x": float("nan")}, "finite"),
    ("price > {x}", {"x": float("inf")}, "finite"),
    ("name == {x}", {"x": "a\x00b"}, "Postgres text"),
    ("a > {x}", {"x": "5"}, "cannot compare"),
    ("a in {x}", {"x": 5}, "needs a list"),
    ("name like {x}", {"x": 5}, "like pattern must be a string"),
    ("a in {x}", {"x": [1, "a"]}, "does not match"),
    ("a == {x}", {"x": _nested(40)}, "nest too deeply"),
    ("a == {x}", {"x": 10**2000}, "too large"),
    ("a == {x}", [("x", 1)], "must be a dict"),
])
def test_template_errors(expr, params, match) -> None:
    with pytest.raises(vecpg.FilterError, match=match):
        compile_filter(expr, _schema(), params=params)


def test_template_error_points_at_the_placeholder() -> None:
    with pytest.raises(vecpg.FilterError) as e:
        compile_filter("a > 1 and b == {oops}", _schema(), params={})
    assert (e.value.position, e.value.token) == (15, "{oops}")


@pytest.mark.parametrize("expr, match", [
    ("price & 1 > 0", "needs integers"),
    ("(price & 1) > 0", "needs integers"),
    ('(name | 1) > 0', "needs integers, got str"),
    ("(flag ^ 1) == 0", "needs integers, got bool"),
    ("(a & 1.5) == 0", "needs integers, got 1.5"),
    ("a & 1 == 1", "binds looser than comparisons"),
    ("(a << -1) > 0", "negative shift count"),
    ("(a & 99999999999999999999) > 0", "int64"),
    ("((a / 2) & 1) == 0", "true division"),
    ("(tags & 1) == 0", "needs integers, got array"),
    ("~price > 0", "needs integers"),
    ("b == 09", "octal"),
    ("b == 0x", "unexpected"),
    ("b == 0b102", "unexpected"),
    ('name == r"ab', "unexpected"),
    ("tags > [1]", "only be compared with == or !="),
    ("tags == [1.5]", "holds integers"),
    ('tags == ["x"]', "does not match"),
    ("b == [1]", "compares only with an ARRAY or JSON field"),
    ("[1] == [1]", "two lists"),
    ("tags == [[1]]", "does not match"),
    ("exists meta", "needs a JSON key path"),
    ("exists a", "needs a JSON key path"),
    ("exists tags", "needs a JSON key path"),
    ("exists 1", "needs a JSON key path"),
    ("exists $meta", r"\$meta needs a key"),
])
def test_grammar_errors(expr, match) -> None:
    with pytest.raises(vecpg.FilterError, match=match) as e:
        compile_filter(expr, _schema())
    assert e.value.position is not None, str(e.value)


# -- property test: random integer expressions with bit operators against Python -----------
# The reference is exact (Fractions for JSON numbers, as vecpg's numeric); only the inputs of
# bit and shift operators must be whole numbers within int64, else the result is unknown.

def _jnum(v: Any) -> int | Fraction | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return Fraction(repr(v)) if isinstance(v, float) else v


def _bitin(x: Any) -> int | None:
    if x is None or (isinstance(x, Fraction) and x.denominator != 1):
        return None
    return _in64(int(x))


_INT_ATOMS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("a", lambda r: r["a"]), ("b", lambda r: r["b"]),
    ('meta["n"]', lambda r: _jnum(r["meta"].get("n"))), ("d", lambda r: _jnum(r.get("d"))),
    ("array_length(tags)", lambda r: len(r["tags"])),
    ("0", lambda r: 0), ("7", lambda r: 7), ("0x7F", lambda r: 127), ("(-2)", lambda r: -2),
    (str(BIG), lambda r: BIG), ("(-9223372036854775808)", lambda r: -BIG - 1),
]
_JSON_ATOMS = ('meta["n"]', "d")
_BITS = {"&": lambda x, y: x & y, "|": lambda x, y: x | y, "^": lambda x, y: x ^ y}
_ARITH = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
_CMPS = {"==": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y,
         ">=": lambda x, y: x >= y}


@st.composite
def _int_expr(draw: Any, depth: int = 0) -> tuple[str, Callable[[dict[str, Any]], Any]]:
    if depth > 2 or draw(st.booleans()):
        return draw(st.sampled_from(_INT_ATOMS))
    kind = draw(st.sampled_from(["bits", "arith", "shift", "not"]))
    ta, fa = draw(_int_expr(depth + 1))
    if kind == "not":
        return f"(~{ta})", lambda r: _op(lambda x: ~x, _bitin(fa(r)))
    if kind == "shift":
        c = draw(st.integers(0, 70))
        op = draw(st.sampled_from(["<<", ">>"]))
        f = _shl if op == "<<" else _shr
        return f"({ta} {op} {c})", lambda r: f(_bitin(fa(r)), c)
    tb, fb = draw(_int_expr(depth + 1))
    if kind == "bits":
        op = draw(st.sampled_from(list(_BITS)))
        return f"({ta} {op} {tb})", lambda r: _op(_BITS[op], _bitin(fa(r)), _bitin(fb(r)))
    op = draw(st.sampled_from(list(_ARITH)))
    return f"({ta} {op} {tb})", lambda r: _op(_ARITH[op], fa(r), fb(r))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=bool(os.environ.get("CI")), database=None)
@given(left=_int_expr(), right=_int_expr(), cmp=st.sampled_from(list(_CMPS)),
       negate=st.booleans())
def test_random_bit_expressions_match_python(db, left, right, cmp, negate) -> None:
    (ta, fa), (tb, fb) = left, right
    if ta in _JSON_ATOMS:  # JSON against JSON would compare them as JSON values
        ta = f"({ta} + 0)"
    expr = f"{ta} {cmp} {tb}"
    if negate:
        expr = f"not ({expr})"

    def pred(r: dict[str, Any]) -> Any:
        out = _op(_CMPS[cmp], fa(r), fb(r))
        return _not3(out) if negate else out

    assert _ids(db, expr) == _want(pred), expr
