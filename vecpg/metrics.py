"""Metrics: which apply to which vector type, the SQL that orders by them, and the value
vecpg returns as ``distance``.

Conventions (one per metric, as in Milvus): L2, HAMMING, JACCARD, TANIMOTO, SUBSTRUCTURE and
SUPERSTRUCTURE return a distance (smaller = closer); IP and COSINE return a similarity
(larger = closer). Results are always ordered closest first.

| metric         | vectors              | returned ``distance``                      |
|----------------|----------------------|--------------------------------------------|
| L2             | float, float16, sparse | Euclidean distance ``sqrt(sum((a-b)^2))`` |
| IP             | float, float16, sparse | inner product ``sum(a*b)`` (similarity)   |
| COSINE         | float, float16, sparse | cosine similarity ``a.b / (|a||b|)``       |
| HAMMING        | binary               | number of differing bits                   |
| JACCARD        | binary               | ``1 - |a&b| / |a|b|`` (0/0 → 1)            |
| TANIMOTO       | binary               | ``1 - tanimoto(a, b)``; same as JACCARD     |
| SUBSTRUCTURE   | binary               | rows whose fingerprint contains the query; |
|                |                      | distance ``1 - tanimoto`` among them       |
| SUPERSTRUCTURE | binary               | rows whose fingerprint is contained in the |
|                |                      | query; distance ``1 - tanimoto`` among them|
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from psycopg import sql

from .errors import InvalidArgument, MetricMismatch
from .schema import DataType


class Metric(str, enum.Enum):
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
        return self in _BINARY


_FLOAT = frozenset({Metric.L2, Metric.IP, Metric.COSINE})
_BINARY = frozenset({Metric.HAMMING, Metric.JACCARD, Metric.TANIMOTO, Metric.SUBSTRUCTURE,
                     Metric.SUPERSTRUCTURE})
_FLOAT_TYPES = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.SPARSE_FLOAT_VECTOR)


def default_metric(dtype: DataType) -> Metric:
    """COSINE for float vectors (as Milvus 2.4+), HAMMING for binary vectors."""
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

# operator class suffix for index builds (prefix vector_/halfvec_/sparsevec_/bit_)
_OPCLASS = {
    Metric.L2: "l2_ops",
    Metric.IP: "ip_ops",
    Metric.COSINE: "cosine_ops",
    Metric.HAMMING: "hamming_ops",
    Metric.JACCARD: "jaccard_ops",
    Metric.TANIMOTO: "jaccard_ops",
}
_TYPE_PREFIX = {DataType.FLOAT_VECTOR: "vector", DataType.FLOAT16_VECTOR: "halfvec",
                DataType.SPARSE_FLOAT_VECTOR: "sparsevec", DataType.BINARY_VECTOR: "bit"}
_CAST = {DataType.FLOAT_VECTOR: "vector", DataType.FLOAT16_VECTOR: "halfvec",
         DataType.SPARSE_FLOAT_VECTOR: "sparsevec"}


@dataclass(frozen=True)
class DistanceSQL:
    """SQL pieces for ordering by a metric; ``%s`` stands for the query vector."""

    order: sql.Composable       # ``col <op> %s::type``: the raw key (ascending = closest first)
    where: sql.Composable | None  # extra condition (SUBSTRUCTURE/SUPERSTRUCTURE), uses %s too


def distance_sql(metric: Metric, column: sql.Composable, dtype: DataType, dim: int) -> DistanceSQL:
    """The ordering key for ``metric`` on ``column``; each ``%s`` takes the query vector."""
    # bit needs its length: a bare ::bit means bit(1) and would truncate the query
    cast = sql.SQL("bit({})").format(sql.Literal(dim)) if dtype is DataType.BINARY_VECTOR \
        else sql.SQL(_CAST[dtype])
    key = sql.SQL("({} {} %s::{})").format(column, sql.SQL(_OPERATOR[metric]), cast)
    where: sql.Composable | None = None
    if metric is Metric.SUBSTRUCTURE:   # the query is a substructure of the row
        where = sql.SQL("vecpg.is_substructure(%s::{}, {})").format(cast, column)
    elif metric is Metric.SUPERSTRUCTURE:  # the query is a superstructure of the row
        where = sql.SQL("vecpg.is_superstructure(%s::{}, {})").format(cast, column)
    return DistanceSQL(order=key, where=where)


def to_returned(metric: Metric, raw: float) -> float:
    """Turn pgvector's raw ordering key into the documented returned value."""
    if metric is Metric.IP:
        return -raw
    if metric is Metric.COSINE:
        return 1.0 - raw
    return raw


def opclass(metric: Metric, dtype: DataType) -> str | None:
    """pgvector operator class for an index, or None when the metric has none."""
    suffix = _OPCLASS.get(metric)
    if suffix is None:
        return None
    return f"{_TYPE_PREFIX[dtype]}_{suffix}"
