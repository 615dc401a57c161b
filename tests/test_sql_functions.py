"""The binary-metric SQL functions of ``sql/002_binary_metrics.sql``, on a real Postgres.

Each function is checked against a numpy reference and against pgvector's ``<~>`` (Hamming)
and ``<%>`` (Jaccard) operators. Fingerprints travel as text ('0101...') cast to
``bit varying``: a cast to plain ``bit`` would mean ``bit(1)``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import psycopg
import pytest
from psycopg import sql

from vecpg.errors import InvalidArgument, translate
from vecpg.migrate import sql_text

SQL_FILE = "002_binary_metrics.sql"

TWO_ARG = ["hamming_distance", "jaccard_distance", "tanimoto", "tanimoto_distance",
           "is_substructure", "is_superstructure", "substructure_distance",
           "superstructure_distance"]
ALL_FUNCTIONS = ["popcount", *TWO_ARG]


def _sql_text() -> str:
    return sql_text(SQL_FILE)


@pytest.fixture(scope="module")
def binary_metrics(dsn: str) -> None:
    """The functions installed in schema vecpg, as the migration installs them."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute("CREATE SCHEMA IF NOT EXISTS vecpg")
        c.execute(_sql_text())


# -- helpers -------------------------------------------------------------------------------

def _bits(row: np.ndarray) -> str:
    return "".join("1" if x else "0" for x in row)


def _reference(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Every function, row by row, in numpy (a and b: boolean arrays of shape (n, length))."""
    both = (a & b).sum(axis=1)
    either = (a | b).sum(axis=1)
    tanimoto = np.divide(both, either, out=np.zeros(len(a)), where=either > 0)
    sub = ((a & b) == a).all(axis=1)
    sup = ((a & b) == b).all(axis=1)
    return {
        "popcount": a.sum(axis=1),
        "hamming_distance": (a ^ b).sum(axis=1),
        "jaccard_distance": 1.0 - tanimoto,
        "tanimoto": tanimoto,
        "tanimoto_distance": 1.0 - tanimoto,
        "is_substructure": sub,
        "is_superstructure": sup,
        "substructure_distance": np.where(sub, 0.0, math.inf),
        "superstructure_distance": np.where(sup, 0.0, math.inf),
    }


def _evaluate(conn: psycopg.Connection, a: np.ndarray, b: np.ndarray) -> dict[str, list]:
    """Every function and pgvector's two operators on the pairs (a[i], b[i]), in one query."""
    calls = [sql.SQL("vecpg.popcount(a)")]
    calls += [sql.SQL("vecpg.{}(a, b)").format(sql.Identifier(f)) for f in TWO_ARG]
    calls += [sql.SQL("a <~> b"), sql.SQL("a <%%> b")]  # %% escapes % for psycopg
    query = sql.SQL(
        "SELECT {} FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS p(ta, tb, i), "
        "LATERAL (SELECT ta::varbit AS a, tb::varbit AS b) AS f ORDER BY i"
    ).format(sql.SQL(", ").join(calls))
    rows = conn.execute(query, ([_bits(r) for r in a], [_bits(r) for r in b])).fetchall()
    columns = list(zip(*rows))
    names = [*ALL_FUNCTIONS, "<~>", "<%>"]
    return {name: list(col) for name, col in zip(names, columns)}


def _random_pairs(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of fingerprints of mixed density, a quarter each: unrelated, a inside b,
    b inside a, identical; plus all-zero rows, so every outcome of every function occurs."""
    density = rng.choice([0.02, 0.1, 0.3, 0.6], size=(n, 1))
    a = rng.random((n, length)) < density
    b = rng.random((n, length)) < density
    q = n // 4
    b[q:2 * q] |= a[q:2 * q]          # a is a substructure of b
    a[2 * q:3 * q] |= b[2 * q:3 * q]  # a is a superstructure of b
    b[3 * q:] = a[3 * q:]             # identical
    a[0] = False                      # empty vs random
    a[1] = b[1] = False               # both empty
    return a, b


# -- against numpy and pgvector ----------------------------------------------------------

@pytest.mark.parametrize("length", [1, 7, 100, 2048])
def test_functions_match_numpy_and_pgvector(conn, binary_metrics, length):
    rng = np.random.default_rng(length)
    a, b = _random_pairs(rng, 300, length)
    want = _reference(a, b)
    got = _evaluate(conn, a, b)

    for name in ["popcount", "hamming_distance", "is_substructure", "is_superstructure",
                 "substructure_distance", "superstructure_distance"]:
        assert got[name] == want[name].tolist(), name  # integers, booleans, 0 / inf: exact
    for name in ["jaccard_distance", "tanimoto", "tanimoto_distance"]:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-12, err_msg=name)
    # tanimoto is the correctly rounded quotient: the very double numpy computes
    assert got["tanimoto"] == want["tanimoto"].tolist()

    # pgvector: the same values, bit for bit
    assert got["hamming_distance"] == got["<~>"]
    assert got["jaccard_distance"] == got["<%>"]
    assert got["tanimoto_distance"] == got["<%>"]
    assert [1.0 - t for t in got["tanimoto"]] == got["<%>"]
    # the random pairs really exercised both outcomes of each relation
    assert 0 < sum(want["is_substructure"]) < len(a)
    assert 0 < sum(want["is_superstructure"]) < len(a)


def _one(conn: psycopg.Connection, function: str, *args: str | None):
    params = sql.SQL(", ").join(sql.SQL("%s::varbit") for _ in args)
    query = sql.SQL("SELECT vecpg.{}({})").format(sql.Identifier(function), params)
    return conn.execute(query, args).fetchone()[0]


def test_both_empty(conn, binary_metrics):
    z = "0000000"
    assert _one(conn, "popcount", z) == 0
    assert _one(conn, "tanimoto", z, z) == 0.0
    # pgvector puts two empty fingerprints at Jaccard distance 1; vecpg agrees
    assert conn.execute("SELECT B'0000' <%> B'0000'").fetchone()[0] == 1.0
    assert _one(conn, "tanimoto_distance", z, z) == 1.0
    assert _one(conn, "jaccard_distance", z, z) == 1.0
    assert _one(conn, "hamming_distance", z, z) == 0.0
    # the empty set is inside itself, both ways
    assert _one(conn, "is_substructure", z, z) is True
    assert _one(conn, "is_superstructure", z, z) is True
    assert _one(conn, "substructure_distance", z, z) == 0.0
    assert _one(conn, "superstructure_distance", z, z) == 0.0


def test_empty_against_nonempty(conn, binary_metrics):
    z, x = "0000000", "0110010"
    assert _one(conn, "tanimoto", z, x) == 0.0
    assert _one(conn, "tanimoto_distance", z, x) == 1.0
    assert _one(conn, "hamming_distance", z, x) == 3.0
    assert _one(conn, "is_substructure", z, x) is True     # no bit of z is missing from x
    assert _one(conn, "is_substructure", x, z) is False
    assert _one(conn, "is_superstructure", x, z) is True
    assert _one(conn, "is_superstructure", z, x) is False
    assert _one(conn, "substructure_distance", x, z) == math.inf
    assert _one(conn, "superstructure_distance", x, z) == 0.0


def test_identical(conn, binary_metrics):
    x = "1011001110"
    assert _one(conn, "popcount", x) == 6
    assert _one(conn, "tanimoto", x, x) == 1.0
    assert _one(conn, "tanimoto_distance", x, x) == 0.0
    assert _one(conn, "jaccard_distance", x, x) == 0.0
    assert _one(conn, "hamming_distance", x, x) == 0.0
    for f in ["is_substructure", "is_superstructure"]:
        assert _one(conn, f, x, x) is True
    for f in ["substructure_distance", "superstructure_distance"]:
        assert _one(conn, f, x, x) == 0.0


def test_disjoint(conn, binary_metrics):
    x, y = "1100000", "0001110"
    assert _one(conn, "tanimoto", x, y) == 0.0
    assert _one(conn, "tanimoto_distance", x, y) == 1.0
    assert _one(conn, "hamming_distance", x, y) == 5.0
    for f in ["is_substructure", "is_superstructure"]:
        assert _one(conn, f, x, y) is False
        assert _one(conn, f, y, x) is False
    for f in ["substructure_distance", "superstructure_distance"]:
        assert _one(conn, f, x, y) == math.inf


def test_substructure_direction(conn, binary_metrics):
    small, big = "0100100", "0110101"
    assert _one(conn, "is_substructure", small, big) is True
    assert _one(conn, "is_superstructure", big, small) is True
    assert _one(conn, "is_substructure", big, small) is False
    assert _one(conn, "is_superstructure", small, big) is False
    assert _one(conn, "substructure_distance", small, big) == 0.0
    assert _one(conn, "substructure_distance", big, small) == math.inf
    assert _one(conn, "tanimoto", small, big) == 2 / 4
    assert _one(conn, "tanimoto", "1100", "1010") == 1 / 3


@pytest.mark.parametrize("function", TWO_ARG)
def test_different_lengths_name_both(conn, binary_metrics, function):
    with pytest.raises(psycopg.errors.DataException) as caught:
        _one(conn, function, "1" * 7, "1" * 100)
    assert re.search(r"\b7\b.*\b100\b", str(caught.value)), str(caught.value)
    # at vecpg's error boundary this is an argument error
    with pytest.raises(InvalidArgument, match=r"\b7\b.*\b100\b"), translate():
        _one(conn, function, "0" * 7, "0" * 100)


def test_different_lengths_in_a_table_scan(conn, binary_metrics, schema_name):
    """Inlined into a scan (not constant-folded), the error still names both lengths."""
    table = sql.Identifier(schema_name, "fps")
    conn.execute(sql.SQL("CREATE TABLE {} (id int, fp bit varying)").format(table))
    conn.execute(sql.SQL("INSERT INTO {} VALUES (1, B'1010'), (2, B'101')").format(table))
    for function in ["tanimoto", "is_substructure"]:
        query = sql.SQL("SELECT vecpg.{}(%s::varbit, fp) FROM {}").format(
            sql.Identifier(function), table)
        with pytest.raises(psycopg.errors.DataException, match=r"\b4\b.*\b3\b"):
            conn.execute(query, ("1000",)).fetchall()


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_null_in_null_out(conn, binary_metrics, function):
    if function == "popcount":
        assert _one(conn, function, None) is None
        return
    assert _one(conn, function, None, "101") is None
    assert _one(conn, function, "101", None) is None
    assert _one(conn, function, None, None) is None


# -- a collection-sized scan ---------------------------------------------------------------

@pytest.fixture
def fingerprint_table(conn, binary_metrics, schema_name):
    """5,000 fingerprints of 2048 bits, from very sparse to dense, in a fresh table."""
    rng = np.random.default_rng(7)
    n, length = 5000, 2048
    density = rng.choice([0.002, 0.01, 0.05, 0.2], size=(n, 1))
    rows = rng.random((n, length)) < density
    table = sql.Identifier(schema_name, "fingerprints")
    conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, fp bit(2048) NOT NULL)")
                 .format(table))
    copy_sql = sql.SQL("COPY {} (id, fp) FROM STDIN").format(table)
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for i, row in enumerate(rows):
            copy.write_row((i, _bits(row)))
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    return table, rows, rng


def _matching_ids(conn, table, predicate: str, q: np.ndarray) -> list[int]:
    query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id").format(table, sql.SQL(predicate))
    return [r[0] for r in conn.execute(query, {"q": _bits(q)})]


def test_substructure_search_on_a_table(conn, fingerprint_table):
    table, rows, rng = fingerprint_table
    some_row = rows[rng.integers(len(rows))]
    kept = rng.permutation(np.flatnonzero(some_row))[:3]
    queries = {
        "empty": np.zeros(2048, dtype=bool),
        "three bits of a row": np.isin(np.arange(2048), kept),
        "two random bits": np.isin(np.arange(2048), rng.choice(2048, 2, replace=False)),
    }
    for label, q in queries.items():
        want = np.flatnonzero(((rows & q) == q).all(axis=1)).tolist()
        got = _matching_ids(conn, table, "vecpg.is_substructure(%(q)s::varbit, fp)", q)
        assert got == want, label
        by_distance = _matching_ids(
            conn, table, "vecpg.substructure_distance(%(q)s::varbit, fp) = 0", q)
        assert by_distance == want, label
    assert len(_matching_ids(conn, table, "vecpg.is_substructure(%(q)s::varbit, fp)",
                             queries["empty"])) == len(rows)


def test_superstructure_search_on_a_table(conn, fingerprint_table):
    table, rows, rng = fingerprint_table
    sparse = np.flatnonzero(rows.sum(axis=1) < 10)
    q = rows[sparse[:20]].any(axis=0) | (rng.random(2048) < 0.5)
    want = np.flatnonzero(((rows & q) == rows).all(axis=1)).tolist()
    assert len(want) >= 20  # the 20 rows folded into q, at least
    got = _matching_ids(conn, table, "vecpg.is_superstructure(%(q)s::varbit, fp)", q)
    assert got == want
    by_distance = _matching_ids(
        conn, table, "vecpg.superstructure_distance(%(q)s::varbit, fp) = 0", q)
    assert by_distance == want


# -- declared properties ---------------------------------------------------------------------

def test_functions_are_immutable_strict_parallel_safe(conn, binary_metrics):
    rows = conn.execute(
        "SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, l.lanname, "
        "       pg_get_function_identity_arguments(p.oid), "
        "       has_function_privilege('public', p.oid, 'EXECUTE') "
        "FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
        "WHERE p.pronamespace = 'vecpg'::regnamespace AND p.proname = ANY(%s)",
        (ALL_FUNCTIONS,)).fetchall()
    found = {r[0]: r[1:] for r in rows}
    assert sorted(found) == sorted(ALL_FUNCTIONS)
    for name, (volatile, strict, parallel, language, args, public) in found.items():
        assert (volatile, strict, parallel, language) == ("i", True, "s", "sql"), name
        assert args == ("a bit" if name == "popcount" else "a bit, b bit"), name
        assert public, name
    assert conn.execute("SELECT has_schema_privilege('public', 'vecpg', 'USAGE')").fetchone()[0]


def test_functions_are_inlined(conn, fingerprint_table):
    """The planner replaces every call by its expression: no per-row function call."""
    table, _, _ = fingerprint_table
    calls = [sql.SQL("vecpg.popcount(fp)")]
    calls += [sql.SQL("vecpg.{}(fp, %(q)s::varbit)").format(sql.Identifier(f)) for f in TWO_ARG]
    query = sql.SQL("EXPLAIN (VERBOSE, COSTS OFF) SELECT {} FROM {} WHERE "
                    "vecpg.is_substructure(%(q)s::varbit, fp)").format(
        sql.SQL(", ").join(calls), table)
    plan = "\n".join(r[0] for r in conn.execute(query, {"q": "0" * 2048}))
    assert "vecpg." not in plan, plan
    assert "<%>" in plan and "<~>" in plan


def test_file_can_be_applied_again(conn, binary_metrics):
    conn.execute(_sql_text())
    assert _one(conn, "tanimoto", "0110", "0111") == 2 / 3
