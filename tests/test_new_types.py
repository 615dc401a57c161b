"""TIMESTAMPTZ fields, INT8_VECTOR and BFLOAT16_VECTOR against a real Postgres.

Round trips compare what comes back with what went in, in pymilvus' output forms (Milvus'
RFC 3339 strings for times; int8 / little-endian bfloat16 bytes for those vectors); filters
with ``ISO`` / ``INTERVAL`` are checked against Python datetime arithmetic; searches against
numpy's exact distances.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from fractions import Fraction
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

import vecpg
from vecpg import DataType
from vecpg.filters import compile_filter
from vecpg.ingest import prepare_batch
from vecpg.results import select_fields
from vecpg.schema import CollectionSchema

UTC = dt.timezone.utc


# -- Python references ----------------------------------------------------------------------

def milvus_str(t: dt.datetime, tz: dt.tzinfo = UTC) -> str:
    """Milvus' output form, built from isoformat: trailing zeros of the fraction dropped,
    a zero offset as Z."""
    text = t.astimezone(tz).isoformat()
    body, off = text[:19], text[19:]
    frac = ""
    if off.startswith("."):
        frac, off = off[:7].rstrip("0").rstrip("."), off[7:]
    return body + frac + ("Z" if off in ("+00:00", "") else off)


def add_interval(t: dt.datetime, years: int = 0, months: int = 0, days: int = 0,
                 seconds: int = 0, sign: int = 1) -> dt.datetime:
    """Calendar arithmetic on the UTC clock: months (day clamped to the month's end), then
    days, then seconds."""
    u = t.astimezone(UTC)
    total = u.year * 12 + (u.month - 1) + sign * (years * 12 + months)
    y, m = divmod(total, 12)
    day = min(u.day, calendar.monthrange(y, m + 1)[1])
    u = u.replace(year=y, month=m + 1, day=day)
    return u + sign * dt.timedelta(days=days, seconds=seconds)


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16, ties to even, by exact fractions."""
    out = []
    for v in np.asarray(x, np.float32).ravel():
        bits = int(np.float32(v).view(np.uint32))
        lo_bits = bits & 0xFFFF0000
        hi_bits = lo_bits + 0x10000
        lo = np.uint32(lo_bits).view(np.float32)
        hi = np.uint32(hi_bits & 0xFFFFFFFF).view(np.float32)
        dl = abs(Fraction(float(v)) - Fraction(float(lo)))
        dh = abs(Fraction(float(hi)) - Fraction(float(v))) if np.isfinite(hi) else None
        if dh is None or dl < dh or (dl == dh and not (lo_bits >> 16) & 1):
            out.append(lo)
        else:
            out.append(hi)
    return np.array(out, np.float32).reshape(np.shape(x))


def bf16_bytes(x: np.ndarray) -> bytes:
    return (np.asarray(x, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def exact(metric: str, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    rows, q = rows.astype(np.float64), q.astype(np.float64)
    if metric == "L2":
        return np.asarray(((rows - q) ** 2).sum(axis=1))
    if metric == "IP":
        return rows @ q
    return np.asarray((rows @ q) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(q)))


def check_search(hits: Any, metric: str, want: np.ndarray, ids: list[int], k: int) -> None:
    """The hits are a correct top-k of ``want`` (ties in any order), with exact distances."""
    by_id = dict(zip(ids, want))
    best = np.sort(want)[:k] if metric == "L2" else -np.sort(-want)[:k]
    got = [h["distance"] for h in hits]
    assert len(got) == k
    assert np.allclose(got, best, rtol=1e-5, atol=1e-4)
    for h in hits:
        assert h["distance"] == pytest.approx(by_id[h["id"]], rel=1e-5, abs=1e-4)


# -- TIMESTAMPTZ ------------------------------------------------------------------------------

def _ts_schema() -> CollectionSchema:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("created", DataType.TIMESTAMPTZ, default_value="2024-12-31 22:00:00-02:00")
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return s


def test_timestamptz_round_trip_every_input_form(client: vecpg.Client) -> None:
    client.create_collection("t", schema=_ts_schema())
    shanghai = dt.timezone(dt.timedelta(hours=8))
    inputs: list[tuple[Any, dt.datetime | None]] = [
        ("2025-05-01T23:59:59+08:00", dt.datetime(2025, 5, 1, 15, 59, 59, tzinfo=UTC)),
        ("2025-01-01 00:00:00Z", dt.datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T00:00:00", dt.datetime(2025, 1, 1, tzinfo=UTC)),  # naive: UTC
        ("2024-12-31 22:00:00+08", dt.datetime(2024, 12, 31, 14, tzinfo=UTC)),
        ("2025-03-20T10:30:00.123456789Z", dt.datetime(2025, 3, 20, 10, 30, 0, 123456,
                                                       tzinfo=UTC)),  # truncated, as Milvus
        ("2025-03-20T10:30:00.120-05:30", dt.datetime(2025, 3, 20, 16, 0, 0, 120000,
                                                      tzinfo=UTC)),
        (dt.datetime(2025, 6, 1, 12, tzinfo=shanghai), dt.datetime(2025, 6, 1, 4, tzinfo=UTC)),
        (dt.datetime(2025, 6, 1, 12), dt.datetime(2025, 6, 1, 12, tzinfo=UTC)),
        (np.datetime64("2025-02-03T04:05:06.5"), dt.datetime(2025, 2, 3, 4, 5, 6, 500000,
                                                              tzinfo=UTC)),
        (np.datetime64("1969-07-20T20:17:40", "ns"), dt.datetime(1969, 7, 20, 20, 17, 40,
                                                                  tzinfo=UTC)),
        ("0001-01-02T00:00:00Z", dt.datetime(1, 1, 2, tzinfo=UTC)),
        (None, None),
        (np.datetime64("NaT"), None),
    ]
    rows = [{"id": i, "ts": v, "v": [1.0, float(i)]} for i, (v, _) in enumerate(inputs)]
    rows[0]["created"] = "2000-01-01T00:00:00+14:00"
    client.insert("t", rows)
    got = {r["id"]: r for r in client.query("t", filter="id >= 0", output_fields=["ts",
                                                                                  "created"])}
    default = milvus_str(dt.datetime(2025, 1, 1, 0, tzinfo=UTC))
    for i, (_, want) in enumerate(inputs):
        assert got[i]["ts"] == (None if want is None else milvus_str(want)), i
        assert got[i]["created"] == ("1999-12-31T10:00:00Z" if i == 0 else default)
    assert got[4]["ts"] == "2025-03-20T10:30:00.123456Z"
    assert got[5]["ts"] == "2025-03-20T16:00:00.12Z"
    # get and search return the same strings
    assert [r["ts"] for r in client.get("t", ids=[0, 11])] == [got[0]["ts"], None]
    hits = client.search("t", [[1.0, 0.0]], limit=3, output_fields=["ts"],
                         search_params={"metric_type": "L2"})[0]
    for h in hits:
        assert h["entity"]["ts"] == got[h["id"]]["ts"]
    # a column of datetime64 values (with NaT) in the columnar form
    client.insert("t", {"id": [100, 101], "v": [[0.0, 1.0], [0.0, 2.0]],
                        "ts": np.array(["2025-01-01T01:02:03", "NaT"], "datetime64[us]")})
    assert [r["ts"] for r in client.get("t", ids=[100, 101])] == ["2025-01-01T01:02:03Z",
                                                                  None]
    info = client.describe_collection("t")
    created = next(f for f in info["fields"] if f["name"] == "created")
    assert created["default_value"] == "2025-01-01T00:00:00Z"


def test_timestamptz_output_and_input_time_zones(client: vecpg.Client, dsn: str) -> None:
    s = _ts_schema()
    client.create_collection("tz", schema=s)
    # naive input in a collection timezone (the batch's timezone) vs explicit offsets
    batch = prepare_batch(s, [{"id": 1, "ts": "2025-01-01 08:00:00", "v": [1, 1]},
                              {"id": 2, "ts": dt.datetime(2025, 1, 1, 8), "v": [1, 1]},
                              {"id": 3, "ts": "2025-01-01T08:00:00+09:00", "v": [1, 1]}],
                          timezone="Asia/Shanghai")
    pg_epoch = dt.datetime(2000, 1, 1, tzinfo=UTC)
    us = ((dt.datetime(2025, 1, 1, tzinfo=UTC) - pg_epoch) // dt.timedelta(microseconds=1))
    assert batch.column("ts").values.tolist() == [us, us, us - 3600 * 10**6]
    with pytest.raises(vecpg.InvalidArgument):
        prepare_batch(s, [{"id": 1, "v": [1, 1]}], timezone="Mars/Olympus")
    client.insert("tz", [{"id": 1, "ts": "2025-07-01T00:00:00Z", "v": [1, 1]},
                         {"id": 2, "ts": "2025-01-15T12:34:56.5Z", "v": [1, 1]}])
    table = client.describe_collection("tz")["table"]
    schema_name, name = table.split(".")
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'America/Los_Angeles'")  # what psycopg reads in
        cols = sql.SQL("id, ts")
        fetched = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(
            cols, sql.Identifier(schema_name, name))).fetchall()
        for zone, want in [("Asia/Shanghai", ["2025-07-01T08:00:00+08:00",
                                              "2025-01-15T20:34:56.5+08:00"]),
                           ("America/New_York", ["2025-06-30T20:00:00-04:00",
                                                 "2025-01-15T07:34:56.5-05:00"]),
                           ("Europe/London", ["2025-07-01T01:00:00+01:00",
                                              "2025-01-15T12:34:56.5Z"]),
                           (None, ["2025-07-01T00:00:00Z", "2025-01-15T12:34:56.5Z"])]:
            sel = select_fields(s, ["ts"], default_all=True, timezone=zone)
            assert [sel.to_dict(r)["ts"] for r in fetched] == want


def _ts_rows(n: int = 80) -> list[dict[str, Any]]:
    rng = random.Random(5)
    base = dt.datetime(2024, 12, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        t = base + dt.timedelta(seconds=rng.randrange(0, 120 * 86400), microseconds=rng.choice(
            [0, 500000, 123456]))
        if i % 10 == 0:
            t = dt.datetime(2025, 1, 31, 6, tzinfo=UTC) + dt.timedelta(hours=i // 10)
        rows.append({"id": i, "ts": None if i % 13 == 5 else t, "v": [1.0, float(i)]})
    return rows


@pytest.mark.parametrize("session_tz", ["UTC", "Pacific/Kiritimati", "America/New_York"])
def test_timestamptz_filters_match_python(client: vecpg.Client, dsn: str,
                                          session_tz: str) -> None:
    s = _ts_schema()
    client.create_collection("f", schema=s)
    rows = _ts_rows()
    client.insert("f", rows)
    times: dict[int, dt.datetime | None] = {r["id"]: r["ts"] for r in rows}
    cut = dt.datetime(2025, 2, 1, tzinfo=UTC)
    cut8 = dt.datetime(2025, 2, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    cases: list[tuple[str, dict[str, Any] | None, Any]] = [
        ('ts > ISO "2025-02-01T00:00:00Z"', None, lambda t: t > cut),
        ('ts <= ISO "2025-02-01 08:00:00+08:00"', None, lambda t: t <= cut8),
        ('ISO "2025-02-01T00:00:00" < ts', None, lambda t: cut < t),
        ('ts == ISO "2025-01-31T07:00:00Z"', None,
         lambda t: t == dt.datetime(2025, 1, 31, 7, tzinfo=UTC)),
        ('ts != ISO "2025-01-31T07:00:00Z"', None,
         lambda t: t != dt.datetime(2025, 1, 31, 7, tzinfo=UTC)),
        ('ts + INTERVAL "P1DT2H" > ISO "2025-02-01T00:00:00Z"', None,
         lambda t: add_interval(t, days=1, seconds=7200) > cut),
        ('ts - INTERVAL "P1M" >= ISO "2025-01-01T00:00:00Z"', None,
         lambda t: add_interval(t, months=1, sign=-1) >= dt.datetime(2025, 1, 1, tzinfo=UTC)),
        ('ts + interval "P1M" < ISO "2025-02-28T08:00:00Z"', None,  # Jan 31 + 1 month: Feb 28
         lambda t: add_interval(t, months=1) < dt.datetime(2025, 2, 28, 8, tzinfo=UTC)),
        ('ISO "2026-04-01T00:00:00Z" >= ts + INTERVAL "P1Y2M3DT4H5M6S"', None,
         lambda t: dt.datetime(2026, 4, 1, tzinfo=UTC) >= add_interval(
             add_interval(t, years=1, months=2), days=3, seconds=4 * 3600 + 5 * 60 + 6)),
        ('ts + INTERVAL "P1W" - INTERVAL "PT12H" > ISO "2025-02-10T00:00:00Z"', None,
         lambda t: t + dt.timedelta(days=7, hours=-12) > dt.datetime(2025, 2, 10, tzinfo=UTC)),
        ('ISO "2025-01-01T00:00:00Z" < ts < ISO "2025-02-01T00:00:00Z"', None,
         lambda t: dt.datetime(2025, 1, 1, tzinfo=UTC) < t < cut),
        ("ts > {t}", {"t": cut}, lambda t: t > cut),
        ("ts > {t}", {"t": "2025-02-01 08:00:00+08:00"}, lambda t: t > cut8),
        ("ts > ISO {t}", {"t": np.datetime64("2025-02-01T00:00:00")}, lambda t: t > cut),
        ("ts + {d} > {t}", {"d": dt.timedelta(hours=36), "t": cut},
         lambda t: t + dt.timedelta(hours=36) > cut),
        ('ts in [ISO "2025-01-31T06:00:00Z", "2025-01-31 07:00:00Z"]', None,
         lambda t: t in (dt.datetime(2025, 1, 31, 6, tzinfo=UTC),
                         dt.datetime(2025, 1, 31, 7, tzinfo=UTC))),
        ('ts not in [ISO "2025-01-31T06:00:00Z"]', None,
         lambda t: t != dt.datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("ts is null", None, None),
        ('ts is not null and id < 40 and ts >= ISO "2025-01-15T00:00:00Z"', None,
         lambda t: t >= dt.datetime(2025, 1, 15, tzinfo=UTC)),
    ]
    table = client.describe_collection("f")["table"]
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("SET TimeZone = {}").format(sql.Literal(session_tz)))
        for expr, params, pred in cases:
            frag = compile_filter(expr, s, params=params)
            got = {r[0] for r in conn.execute(sql.SQL("SELECT id FROM {} WHERE {}").format(
                sql.Identifier(*table.split(".")), frag.sql), frag.params)}
            if pred is None:
                want = {i for i, t in times.items() if t is None}
            else:
                want = {i for i, t in times.items() if t is not None and pred(t)
                        and (i < 40 or "id < 40" not in expr)}
            assert got == want, expr
            assert 0 < len(want) < len(rows), expr  # each case tells rows apart
    # through the client too (its own session), with a filter template
    got = {r["id"] for r in client.query("f", filter="ts + INTERVAL 'PT1H' > {t}",
                                         filter_params={"t": cut})}
    assert got == {i for i, t in times.items()
                   if t is not None and t + dt.timedelta(hours=1) > cut}


def test_timestamptz_filter_time_zone_for_naive_literals(client: vecpg.Client,
                                                         dsn: str) -> None:
    s = _ts_schema()
    client.create_collection("z", schema=s)
    client.insert("z", [{"id": i, "ts": dt.datetime(2025, 1, 1, i, tzinfo=UTC),
                         "v": [1.0, 0.0]} for i in range(24)])
    table = sql.Identifier(*client.describe_collection("z")["table"].split("."))
    with psycopg.connect(dsn) as conn:
        for zone, offset in [("Asia/Shanghai", 8), ("America/New_York", -5), (None, 0)]:
            for expr in ('ts < ISO "2025-01-01 10:00:00"',
                         'ts + INTERVAL "PT0S" < ISO "2025-01-01T10:00:00"'):
                frag = compile_filter(expr, s, timezone=zone)
                got = {r[0] for r in conn.execute(sql.SQL("SELECT id FROM {} WHERE {}").format(
                    table, frag.sql), frag.params)}
                assert got == {i for i in range(24) if i < 10 - offset}, (zone, expr)
            # an explicit offset does not depend on the timezone
            frag = compile_filter('ts < ISO "2025-01-01T10:00:00Z"', s, timezone=zone)
            assert len(conn.execute(sql.SQL("SELECT id FROM {} WHERE {}").format(
                table, frag.sql), frag.params).fetchall()) == 10
    with pytest.raises(vecpg.InvalidArgument):
        compile_filter('ts < ISO "2025-01-01T10:00:00"', s, timezone="Nowhere/Atlantis")


def test_timestamptz_every_value_is_a_parameter() -> None:
    s = _ts_schema()
    evil = "2025-01-01T00:00:00Z'); DROP TABLE t; --"
    frag = compile_filter("ts > {t} and ts + INTERVAL {d} < ISO {t2}", s,
                          params={"t": evil.split("'")[0], "d": "P1D",
                                  "t2": dt.datetime(2025, 1, 2, tzinfo=UTC)})
    text = frag.sql.as_string(None)
    assert "2025" not in text and "P1D" not in text
    with pytest.raises(vecpg.FilterError):
        compile_filter("ts > {t}", s, params={"t": evil})


@pytest.mark.parametrize("expr", [
    "ts > 3",
    'ts > "yesterday"',
    'ts > ISO "2025-01-01"',                      # a date alone is not a time
    'ts > ISO "2025-02-30T00:00:00Z"',
    'ts > ISO "2025-01-01T00:00:00+15:00"',       # Milvus: offsets -12..+14
    'ts + INTERVAL "P1H" > ISO "2025-01-01T00:00:00Z"',   # hours need the T
    'ts + INTERVAL "1D" > ISO "2025-01-01T00:00:00Z"',
    'ts + INTERVAL "P4001Y" > ISO "2025-01-01T00:00:00Z"',
    'ts * INTERVAL "P1D" > ISO "2025-01-01T00:00:00Z"',
    'INTERVAL "P1D" > ISO "2025-01-01T00:00:00Z"',
    'id + INTERVAL "P1D" > 3',
    'ts like "2025%"',
    "ts",
    'ts == [ISO "2025-01-01T00:00:00Z"]',
    'ts in [1, 2]',
    'v > ISO "2025-01-01T00:00:00Z"',
])
def test_timestamptz_filter_errors(expr: str) -> None:
    with pytest.raises(vecpg.FilterError):
        compile_filter(expr, _ts_schema())


def test_fields_named_iso_and_interval_still_parse() -> None:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("iso", DataType.INT64)
    s.add_field("interval", DataType.TIMESTAMPTZ)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    assert compile_filter("iso > 3 and iso in [1, 2]", s).params == [3, [1, 2]]
    frag = compile_filter('interval + INTERVAL "P1D" > ISO "2025-01-01T00:00:00Z"', s)
    assert '"interval"' in frag.sql.as_string(None)


@pytest.mark.parametrize("value", [
    1735689600, 1.5, True, b"2025-01-01", "2025-01-01", "not a time",
    "2025-01-01T00:00:00+15:00", "2025-01-01T25:00:00Z", dt.date(2025, 1, 1),
    np.datetime64("10000-01-01T00:00:00"), [2025, 1, 1],
])
def test_timestamptz_bad_values(client: vecpg.Client, value: Any) -> None:
    client.create_collection("b", schema=_ts_schema())
    with pytest.raises(vecpg.FieldTypeError, match="row 1, field 'ts'"):
        client.insert("b", [{"id": 0, "ts": None, "v": [1, 1]},
                            {"id": 1, "ts": value, "v": [1, 1]}])
    assert client.query("b", filter="id >= 0") == []


def test_timestamptz_schema_rules() -> None:
    with pytest.raises(vecpg.SchemaError):
        CollectionSchema().add_field("ts", DataType.TIMESTAMPTZ, default_value="soon")
    with pytest.raises(vecpg.SchemaError):
        CollectionSchema().add_field("ts", DataType.TIMESTAMPTZ, is_primary=True)
    with pytest.raises(vecpg.SchemaError):
        CollectionSchema().add_field("a", DataType.ARRAY, element_type=DataType.TIMESTAMPTZ,
                                     max_capacity=3)
    with pytest.raises(vecpg.SchemaError):  # not nullable, no default: required
        s = _ts_schema()
        s.fields[2].default_value = None
        prepare_batch(s, [{"id": 1, "ts": None, "v": [1, 1]}])


def test_pymilvus_data_types(client: vecpg.Client) -> None:
    pymilvus = pytest.importorskip("pymilvus")
    s = client.create_schema()
    s.add_field("id", pymilvus.DataType.INT64, is_primary=True)
    s.add_field("ts", pymilvus.DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("v8", pymilvus.DataType.INT8_VECTOR, dim=3)
    s.add_field("vb", pymilvus.DataType.BFLOAT16_VECTOR, dim=3)
    client.create_collection("p", schema=s)
    client.insert("p", [{"id": 1, "ts": "2025-01-01T00:00:00+08:00", "v8": [1, 2, 3],
                         "vb": [0.5, 1.0, 2.0]}])
    (row,) = client.query("p", filter="ts < ISO '2025-01-01T00:00:00Z'",
                          output_fields=["*"])
    assert row == {"id": 1, "ts": "2024-12-31T16:00:00Z",
                   "v8": np.array([1, 2, 3], np.int8).tobytes(),
                   "vb": bf16_bytes(np.array([0.5, 1.0, 2.0], np.float32))}
    # pymilvus' own schema objects too
    ps = pymilvus.CollectionSchema([
        pymilvus.FieldSchema("id", pymilvus.DataType.INT64, is_primary=True),
        pymilvus.FieldSchema("ts", pymilvus.DataType.TIMESTAMPTZ),
        pymilvus.FieldSchema("v8", pymilvus.DataType.INT8_VECTOR, dim=2)])
    client.create_collection("p2", schema=ps)
    types = {f["name"]: f["type"] for f in client.describe_collection("p2")["fields"]}
    assert types["ts"] == pymilvus.DataType.TIMESTAMPTZ
    assert types["v8"] == pymilvus.DataType.INT8_VECTOR


# -- INT8_VECTOR -------------------------------------------------------------------------------

def _vec_schema(dtype: DataType, dim: int) -> CollectionSchema:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", dtype, dim=dim)
    return s


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("index", [None, "HNSW", "IVF_FLAT"])
def test_int8_vectors_round_trip_and_search(client: vecpg.Client, metric: str,
                                            index: str | None) -> None:
    rng = np.random.default_rng(3)
    n, dim = 60, 8
    data = rng.integers(-128, 128, size=(n, dim)).astype(np.int8)
    data[0] = [-128, 127, 0, 1, -1, 2, -2, 3]
    client.create_collection("i8", schema=_vec_schema(DataType.INT8_VECTOR, dim))
    rows = [{"id": i, "vec": data[i] if i % 3 == 0 else data[i].tolist() if i % 3 == 1
             else data[i].tobytes()} for i in range(n)]
    client.insert("i8", rows)
    if index is not None:
        ip = client.prepare_index_params()
        ip.add_index("vec", index_type=index, metric_type=metric,
                     params={"M": 16, "efConstruction": 200} if index == "HNSW"
                     else {"nlist": 1})
        client.create_index("i8", ip)
    got = client.query("i8", filter="id >= 0", output_fields=["vec"])
    assert {r["id"]: r["vec"] for r in got} == {i: data[i].tobytes() for i in range(n)}
    assert np.array_equal(np.frombuffer(got[0]["vec"], np.int8), data[got[0]["id"]])
    queries = [rng.integers(-128, 128, size=dim).astype(np.int8), data[5].tolist(),
               data[7].tobytes()]
    for q in queries:
        qv = np.frombuffer(q, np.int8) if isinstance(q, bytes) else np.asarray(q)
        params: dict[str, Any] = {"metric_type": metric}
        if index == "HNSW":
            params["params"] = {"ef": 200}
        hits = client.search("i8", [q], limit=10, search_params=params,
                             output_fields=["vec"])[0]
        check_search(hits, metric, exact(metric, data, qv), list(range(n)), 10)
        for h in hits:
            assert h["entity"]["vec"] == data[h["id"]].tobytes()


@pytest.mark.parametrize("vec", [
    [1.0, 2, 3, 4], [1, 2, 3, 128], [1, 2, 3, -129], [True, 2, 3, 4], [1, 2, 3],
    np.array([1, 2, 3, 4], np.float32), np.array([0, 0, 0, 300], np.int64), b"\x01\x02\x03",
    "1234", {"a": 1}, np.array([1, 2, 3, 4, 5], np.int8),
])
def test_int8_vector_bad_values(client: vecpg.Client, vec: Any) -> None:
    client.create_collection("bad8", schema=_vec_schema(DataType.INT8_VECTOR, 4))
    with pytest.raises((vecpg.FieldTypeError, vecpg.DimensionMismatch)):
        client.insert("bad8", [{"id": 0, "vec": [0, 0, 0, 0]}, {"id": 1, "vec": vec}])
    with pytest.raises((vecpg.FieldTypeError, vecpg.DimensionMismatch)):
        client.search("bad8", [vec], limit=1)
    with pytest.raises(vecpg.FieldTypeError):
        client.insert("bad8", {"id": np.arange(2), "vec": np.ones((2, 4), np.float64)})


# -- BFLOAT16_VECTOR ---------------------------------------------------------------------------

def test_bf16_rounding_matches_ties_to_even() -> None:
    s = _vec_schema(DataType.BFLOAT16_VECTOR, 6)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 6)).astype(np.float32) * np.float32(1e3)
    # exact ties: halfway between two bfloat16 values, both parities
    x[0] = np.array([0x3F808000, 0x3F818000, 0x3F800001, 0x3F80FFFF, 0x00000001, 0x80008000],
                    np.uint32).view(np.float32)
    got = prepare_batch(s, {"id": np.arange(200), "vec": x}).column("vec").values
    assert np.array_equal(got.view(np.uint32), bf16_round(x).view(np.uint32))
    assert not (got.view(np.uint32) & 0xFFFF).any()  # held exactly by float32
    f64 = prepare_batch(s, {"id": np.arange(200), "vec": x.astype(np.float64)})
    assert np.array_equal(f64.column("vec").values, got)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_bf16_vectors_round_trip_and_search(client: vecpg.Client, metric: str) -> None:
    rng = np.random.default_rng(9)
    n, dim = 50, 16
    raw = rng.standard_normal((n, dim)).astype(np.float32)
    stored = bf16_round(raw)
    client.create_collection("bf", schema=_vec_schema(DataType.BFLOAT16_VECTOR, dim))
    rows = [{"id": i, "vec": raw[i] if i % 3 == 0 else raw[i].tolist() if i % 3 == 1
             else bf16_bytes(stored[i])} for i in range(n)]
    client.insert("bf", rows)
    got = {r["id"]: r["vec"] for r in client.query("bf", filter="id >= 0",
                                                     output_fields=["vec"])}
    assert got == {i: bf16_bytes(stored[i]) for i in range(n)}
    back = (np.frombuffer(got[3], "<u2").astype(np.uint32) << 16).view(np.float32)
    assert np.array_equal(back, stored[3])
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="HNSW", metric_type=metric, params={"efConstruction": 200})
    client.create_index("bf", ip)
    for q in (raw[4], rng.standard_normal(dim).astype(np.float32), bf16_bytes(stored[9])):
        qv = bf16_round(np.asarray(q)) if not isinstance(q, bytes) else stored[9]
        hits = client.search("bf", [q], limit=8, output_fields=["vec"],
                             search_params={"metric_type": metric, "params": {"ef": 200}})[0]
        check_search(hits, metric, exact(metric, stored, qv), list(range(n)), 8)
        assert all(h["entity"]["vec"] == bf16_bytes(stored[h["id"]]) for h in hits)


def test_bf16_from_ml_dtypes_arrays(client: vecpg.Client) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([[1.5, -2.25, 3.0e38, 1e-40]], ml_dtypes.bfloat16)
    client.create_collection("ml", schema=_vec_schema(DataType.BFLOAT16_VECTOR, 4))
    client.insert("ml", [{"id": 0, "vec": x[0]}])
    (row,) = client.query("ml", filter="id == 0", output_fields=["vec"])
    assert row["vec"] == x[0].view(np.uint8).tobytes()


@pytest.mark.parametrize("vec", [
    [1.0, float("nan"), 0, 0], [1.0, float("inf"), 0, 0], [3.4e38, 0, 0, 0], [1e39, 0, 0, 0],
    [1.0, 2.0, 3.0], b"\x00" * 7, ["a", "b", "c", "d"], np.array([True, False, True, True]),
])
def test_bf16_bad_values(client: vecpg.Client, vec: Any) -> None:
    client.create_collection("badb", schema=_vec_schema(DataType.BFLOAT16_VECTOR, 4))
    with pytest.raises(vecpg.SchemaError):
        client.insert("badb", [{"id": 0, "vec": [0, 0, 0, 0]}, {"id": 1, "vec": vec}])
    assert client.query("badb", filter="id >= 0") == []
