"""Metrics: which apply to which vector type, the SQL that orders by them, and the value
vecpg returns as ``distance``.

Conventions (one per metric, as in Milvus): L2, HAMMING, JACCARD, TANIMOTO, SUBSTRUCTURE and
SUPERSTRUCTURE return a distance (smaller = closer); IP and COSINE return a similarity
(larger = closer). Results are always ordered closest first.

| metric         | vectors              | returned ``distance``                      |
|----------------|----------------------|--------------------------------------------|
| L2             | float*, sparse       | squared Euclidean distance ``sum((a-b)^2)`` |
| IP             | float*, sparse       | inner product ``sum(a*b)`` (similarity)    |
| COSINE         | float*, sparse       | cosine similarity ``a.b / (|a||b|)``       |
| HAMMING        | binary               | number of differing bits                   |
| JACCARD        | binary               | ``1 - |a&b| / |a|b|`` (0/0 → 1)            |
| TANIMOTO       | binary               | ``1 - tanimoto(a, b)``; same as JACCARD     |
| SUBSTRUCTURE   | binary               | rows whose fingerprint contains the query; |
|                |                      | distance ``1 - tanimoto`` among them       |
| SUPERSTRUCTURE | binary               | rows whose fingerprint is contained in the |
|                |                      | query; distance ``1 - tanimoto`` among them|

float* = the dense non-binary types: float, float16, bfloat16 and int8 vectors.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from psycopg import sql

from .errors import InvalidArgument, MetricMismatch
from .schema import DataType


class Metric(str, enum.Enum):
    """A metric by its Milvus name; a ``str`` enum, so ``Metric.L2 == "L2"`` and it goes
    into JSON (the catalog, ``describe_*``) as the plain name."""

    L2 = "L2"
    IP = "IP"
    COSINE = "COSINE"
    HAMMING = "HAMMING"
    JACCARD = "JACCARD"
    TANIMOTO = "TANIMOTO"
    SUBSTRUCTURE = "SUBSTRUCTURE"
    SUPERSTRUCTURE = "SUPERSTRUCTURE"

    @classmethod
    def parse(cls, value: Metric | str) -> Metric:
        """``Metric.parse("cosine")`` is ``Metric.COSINE``: callers pass Milvus' names in any
        case; anything else raises :class:`InvalidArgument` listing the known names."""
        if isinstance(value, Metric):
            return value
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise InvalidArgument(f"unknown metric_type {value!r}; expected one of "
                              f"{', '.join(cls.__members__)}")

    @property
    def higher_is_closer(self) -> bool:
        """True for similarities (IP, COSINE): the returned value grows as rows get closer."""
        return self in (Metric.IP, Metric.COSINE)

    @property
    def is_binary(self) -> bool:
        """True for the metrics of bit vectors (HAMMING, JACCARD, TANIMOTO, SUB- and
        SUPERSTRUCTURE)."""
        return self in _BINARY


_FLOAT = frozenset({Metric.L2, Metric.IP, Metric.COSINE})
_BINARY = frozenset({Metric.HAMMING, Metric.JACCARD, Metric.TANIMOTO, Metric.SUBSTRUCTURE,
                     Metric.SUPERSTRUCTURE})
_FLOAT_TYPES = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR,
                DataType.INT8_VECTOR, DataType.SPARSE_FLOAT_VECTOR)


def default_metric(dtype: DataType) -> Metric:
    """COSINE for float (and int8) vectors (as Milvus 2.4+), HAMMING for binary vectors."""
    return Metric.HAMMING if dtype is DataType.BINARY_VECTOR else Metric.COSINE


def check_metric(metric: Metric, dtype: DataType, field: str) -> None:
    """Raise :class:`MetricMismatch` unless ``metric`` applies to vectors of ``dtype``."""
    ok = metric in _BINARY if dtype is DataType.BINARY_VECTOR else (
        dtype in _FLOAT_TYPES and metric in _FLOAT)
    if not ok:
        allowed = sorted(m.value for m in (_BINARY if dtype is DataType.BINARY_VECTOR else _FLOAT))
        raise MetricMismatch(f"metric {metric.value} does not apply to {dtype.value} field "
                             f"{field!r}; use one of {', '.join(allowed)}")


# pgvector's distance operator per metric: ``col <op> query`` orders closest first.
_OPERATOR = {
    Metric.L2: "<->",
    Metric.IP: "<#>",        # negative inner product
    Metric.COSINE: "<=>",    # 1 - cosine similarity
    Metric.HAMMING: "<~>",
    Metric.JACCARD: "<%%>",  # "%" doubled: the statement goes out with parameters
    Metric.TANIMOTO: "<%%>",  # Tanimoto distance on bits equals Jaccard distance
    Metric.SUBSTRUCTURE: "<%%>",
    Metric.SUPERSTRUCTURE: "<%%>",
}

# operator class suffix for index builds (prefix vector_/halfvec_/sparsevec_/bit_); INT8 and
# BFLOAT16 vectors are stored as float32 ``vector``s, so they use vector's operators
_OPCLASS = {
    Metric.L2: "l2_ops",
    Metric.IP: "ip_ops",
    Metric.COSINE: "cosine_ops",
    Metric.HAMMING: "hamming_ops",
    Metric.JACCARD: "jaccard_ops",
    Metric.TANIMOTO: "jaccard_ops",
}
_TYPE_PREFIX = {DataType.FLOAT_VECTOR: "vector", DataType.FLOAT16_VECTOR: "halfvec",
                DataType.BFLOAT16_VECTOR: "vector", DataType.INT8_VECTOR: "vector",
                DataType.SPARSE_FLOAT_VECTOR: "sparsevec", DataType.BINARY_VECTOR: "bit"}
_CAST = {DataType.FLOAT_VECTOR: "vector", DataType.FLOAT16_VECTOR: "halfvec",
         DataType.BFLOAT16_VECTOR: "vector", DataType.INT8_VECTOR: "vector",
         DataType.SPARSE_FLOAT_VECTOR: "sparsevec"}


@dataclass(frozen=True)
class DistanceSQL:
    """SQL pieces for ordering by a metric; every ``%s`` stands for the query vector."""

    order: sql.Composable       # ``col <op> %s::type``: the raw key (ascending = closest first)
    # extra conditions on the row (SUBSTRUCTURE/SUPERSTRUCTURE, range search), ANDed
    where: sql.Composable | None
    where_vectors: int = 0      # how many times ``where`` binds the query vector


def distance_sql(metric: Metric, column: sql.Composable, dtype: DataType, dim: int,
                 radius: float | None = None, range_filter: float | None = None) -> DistanceSQL:
    """The ordering key for ``metric`` on ``column``, and the conditions a row must meet.

    SUBSTRUCTURE and SUPERSTRUCTURE screen rows by popcount first (a row containing the
    query has at least as many bits set), which a btree on ``vecpg.popcount(column)`` (made
    with every index on a binary field) can serve before the exact bit test. ``radius`` /
    ``range_filter`` make it a Milvus range search (see :func:`range_bounds`); a TANIMOTO
    or JACCARD range is screened by popcount too: similarity >= t needs
    t * |q| <= |row| <= |q| / t.
    """
    # bit needs its length: a bare ::bit means bit(1) and would truncate the query
    cast = sql.SQL("bit({})").format(sql.Literal(dim)) if dtype is DataType.BINARY_VECTOR \
        else sql.SQL(_CAST[dtype])
    key = sql.SQL("({} {} %s::{})").format(column, sql.SQL(_OPERATOR[metric]), cast)
    conds: list[sql.Composable] = []
    vectors = 0
    pc_row = sql.SQL("vecpg.popcount({})").format(column)
    pc_query = sql.SQL("vecpg.popcount(%s::{})").format(cast)
    if metric is Metric.SUBSTRUCTURE:   # the query is a substructure of the row
        conds.append(sql.SQL("{} >= {} AND vecpg.is_substructure(%s::{}, {})").format(
            pc_row, pc_query, cast, column))
        vectors += 2
    elif metric is Metric.SUPERSTRUCTURE:  # the query is a superstructure of the row
        conds.append(sql.SQL("{} <= {} AND vecpg.is_superstructure(%s::{}, {})").format(
            pc_row, pc_query, cast, column))
        vectors += 2
    lo, hi = range_bounds(metric, radius, range_filter)
    if hi is not None:
        conds.append(sql.SQL("{} < {}").format(key, sql.Literal(hi)))
        vectors += 1
        if metric in (Metric.TANIMOTO, Metric.JACCARD) and hi <= 1.0:
            t = 1.0 - hi  # similarity > t
            conds.append(sql.SQL("{pc} BETWEEN floor({t} * {q}) AND ceil({q} / {t})").format(
                pc=pc_row, q=pc_query, t=sql.Literal(max(t, 1e-9))))
            vectors += 2
    if lo is not None:
        conds.append(sql.SQL("{} >= {}").format(key, sql.Literal(lo)))
        vectors += 1
    where = sql.SQL(" AND ").join(conds) if conds else None
    return DistanceSQL(order=key, where=where, where_vectors=vectors)


def range_bounds(metric: Metric, radius: float | None, range_filter: float | None
                 ) -> tuple[float | None, float | None]:
    """Milvus range search as bounds on pgvector's raw ordering key: ``lo <= key < hi``.

    For distances (L2, HAMMING, JACCARD, TANIMOTO): ``range_filter <= distance < radius``
    (L2's distance is the squared one, as Milvus returns it).
    For similarities (IP, COSINE): ``radius < similarity <= range_filter``.
    """
    for name, v in (("radius", radius), ("range_filter", range_filter)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not math.isfinite(v)):
            raise InvalidArgument(f"search parameter {name} must be a finite number, got {v!r}")
    if radius is None:
        if range_filter is not None:
            raise InvalidArgument("range_filter needs radius (Milvus range search)")
        return None, None
    if metric in (Metric.SUBSTRUCTURE, Metric.SUPERSTRUCTURE):
        raise InvalidArgument(f"{metric.value} is a match, not a distance: no range search")
    r = float(radius)
    f = None if range_filter is None else float(range_filter)
    if metric.higher_is_closer:
        if f is not None and f <= r:
            raise InvalidArgument(f"for {metric.value} (a similarity) range_filter must be "
                                  f"greater than radius; got radius {r}, range_filter {f}")
        # raw key = -ip (IP) or 1 - cos (COSINE)
        hi = -r if metric is Metric.IP else 1.0 - r
        lo = None if f is None else (-f if metric is Metric.IP else 1.0 - f)
        return lo, hi
    if f is not None and f >= r:
        raise InvalidArgument(f"for {metric.value} (a distance) range_filter must be less "
                              f"than radius; got radius {r}, range_filter {f}")
    if metric is Metric.L2:  # Milvus' bounds are on squared L2; pgvector's key is L2
        return (None if f is None or f <= 0 else math.sqrt(f)), math.sqrt(max(r, 0.0))
    return f, r


def returned_affine(metric: Metric) -> tuple[float, float]:
    """``(shift, scale)`` with returned value = shift + scale * pgvector's raw ordering key:
    IP returns the inner product (the key is its negation), COSINE the similarity (the key
    is 1 - cos), every other metric the key itself."""
    if metric is Metric.IP:
        return 0.0, -1.0
    if metric is Metric.COSINE:
        return 1.0, -1.0
    return 0.0, 1.0


def opclass(metric: Metric, dtype: DataType) -> str | None:
    """pgvector operator class for an index, or None when the metric has none."""
    suffix = _OPCLASS.get(metric)
    if suffix is None:
        return None
    return f"{_TYPE_PREFIX[dtype]}_{suffix}"
