"""Index kinds under the Milvus surface, and the pgvector DDL and settings they map to.

Milvus names and parameters are accepted as they are (``index_type="HNSW",
params={"M": 16, "efConstruction": 64}``; at search ``{"ef": 64}`` / ``{"nprobe": 8}``)
and become frozen configs (:class:`Hnsw`, :class:`IvfFlat`, ...).

| index_type              | Postgres                                  | search knob            |
|-------------------------|-------------------------------------------|------------------------|
| FLAT, BIN_FLAT          | none: exact scan                          | -                      |
| IVF_FLAT, BIN_IVF_FLAT  | ``ivfflat`` (lists = nlist)               | nprobe → ivfflat.probes|
| HNSW, AUTOINDEX         | ``hnsw`` (m = M, ef_construction)         | ef → hnsw.ef_search    |
| INVERTED, STL_SORT, TRIE| btree (GIN for JSON and ARRAY) on a scalar| -                      |
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from psycopg import sql

from .errors import InvalidArgument, MetricMismatch
from .metrics import Metric, opclass
from .schema import DataType, FieldSchema

VECTOR_INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW", "BIN_FLAT", "BIN_IVF_FLAT", "AUTOINDEX")
SCALAR_INDEX_TYPES = ("INVERTED", "STL_SORT", "TRIE", "BTREE", "AUTOINDEX")
COMPANION_INDEX_TYPES = ("IVF_SQ8", "IVF_PQ", "ANNOY")  # quantized, built by vecpg itself


def companion_knob(index_type: str) -> str:
    """The search parameter that trades recall for speed in a companion index."""
    return "search_k" if index_type == "ANNOY" else "nprobe"


@dataclass(frozen=True)
class Flat:
    """Exact search: no index structure at all."""

    kind: str = "FLAT"


@dataclass(frozen=True)
class IvfFlat:
    """pgvector ivfflat with ``nlist`` lists."""

    nlist: int = 128
    kind: str = "IVF_FLAT"


@dataclass(frozen=True)
class Hnsw:
    """pgvector hnsw graph."""

    M: int = 16
    efConstruction: int = 64
    kind: str = "HNSW"


@dataclass(frozen=True)
class Scalar:
    """A btree (or GIN, for JSON and ARRAY) index on a scalar field, for filters."""

    method: str = "btree"
    kind: str = "INVERTED"


@dataclass(frozen=True)
class Companion:
    """A quantized companion index trained by vecpg (see :mod:`vecpg.companion`):
    IVF_SQ8 (nlist), IVF_PQ (nlist, m sub-quantizers of nbits), ANNOY (n_trees)."""

    kind: str
    nlist: int = 0
    m: int = 0
    nbits: int = 8
    n_trees: int = 0
    seed: int = 0

    def train_params(self) -> dict[str, Any]:
        if self.kind == "ANNOY":
            return {"n_trees": self.n_trees}
        if self.kind == "IVF_PQ":
            return {"nlist": self.nlist, "m": self.m, "nbits": self.nbits}
        return {"nlist": self.nlist}


IndexConfig = Flat | IvfFlat | Hnsw | Scalar | Companion


def config_params(cfg: IndexConfig) -> dict[str, Any]:
    if isinstance(cfg, Companion):
        return {**cfg.train_params(), "seed": cfg.seed}
    return {k: v for k, v in asdict(cfg).items() if k != "kind"}


def int_param(params: dict[str, Any], names: tuple[str, ...], default: int, lo: int, hi: int,
              *, what: str = "index parameter") -> int:
    """The first of ``names`` present in ``params`` (else ``default``), checked to be an
    integer in ``[lo, hi]``."""
    for name in names:
        if name in params:
            v = params[name]
            if isinstance(v, bool) or not hasattr(v, "__index__") or not lo <= v <= hi:
                raise InvalidArgument(f"{what} {name} must be an integer in [{lo}, {hi}], "
                                      f"got {v!r}")
            return int(v)
    return default


def parse_index(index_type: str, params: dict[str, Any] | None, field: FieldSchema,
                metric: Metric | None) -> IndexConfig:
    """Validate a Milvus-style index request for ``field`` and return its config."""
    params = dict(params or {})
    kind = str(index_type or "AUTOINDEX").strip().upper()
    if not field.dtype.is_vector:
        if kind not in SCALAR_INDEX_TYPES:
            raise InvalidArgument(f"index type {kind} does not apply to scalar field "
                                  f"{field.name!r}; use one of {', '.join(SCALAR_INDEX_TYPES)}")
        method = "gin" if field.dtype in (DataType.JSON, DataType.ARRAY) else "btree"
        return Scalar(method=method, kind="INVERTED" if kind == "AUTOINDEX" else kind)
    if kind in COMPANION_INDEX_TYPES:
        return _parse_companion(kind, params, field, metric)
    if kind not in VECTOR_INDEX_TYPES:
        raise InvalidArgument(f"unknown index type {index_type!r}; expected one of "
                              f"{', '.join(VECTOR_INDEX_TYPES + COMPANION_INDEX_TYPES)}")
    binary = field.dtype is DataType.BINARY_VECTOR
    if kind.startswith("BIN_") and not binary:
        raise InvalidArgument(f"{kind} is for BINARY_VECTOR fields; {field.name!r} is "
                              f"{field.dtype.value}")
    if kind in ("FLAT", "BIN_FLAT"):
        return Flat(kind=kind)
    assert metric is not None
    if opclass(metric, field.dtype) is None:
        raise MetricMismatch(f"metric {metric.value} is searched by exact scan only; "
                             f"use index_type {'BIN_FLAT' if binary else 'FLAT'}")
    if kind in ("IVF_FLAT", "BIN_IVF_FLAT"):
        if field.dtype is DataType.SPARSE_FLOAT_VECTOR:
            raise InvalidArgument("pgvector has no IVF index for sparse vectors; use HNSW")
        if binary and metric is not Metric.HAMMING:
            raise MetricMismatch(f"BIN_IVF_FLAT supports HAMMING only, not {metric.value}; "
                                 "use HNSW for JACCARD/TANIMOTO")
        _check_dims(field, "ivfflat", 64000 if binary else 2000, 4000)
        nlist = int_param(params, ("nlist", "lists"), 128, 1, 32768)
        return IvfFlat(nlist=nlist, kind=kind)
    _check_dims(field, "hnsw", 64000 if binary else 2000, 4000)
    m = int_param(params, ("M", "m"), 16, 2, 100)
    efc = int_param(params, ("efConstruction", "ef_construction"), 64, 4, 1000)
    if efc < 2 * m:
        raise InvalidArgument(f"efConstruction ({efc}) must be at least 2 * M ({2 * m})")
    return Hnsw(M=m, efConstruction=efc)


def _parse_companion(kind: str, params: dict[str, Any], field: FieldSchema,
                     metric: Metric | None) -> Companion:
    if field.dtype is not DataType.FLOAT_VECTOR:
        raise InvalidArgument(f"{kind} indexes FLOAT_VECTOR fields; {field.name!r} is "
                              f"{field.dtype.value}")
    if metric not in (Metric.L2, Metric.IP, Metric.COSINE):
        raise MetricMismatch(f"{kind} supports L2, IP and COSINE, not "
                             f"{metric.value if metric else None}")
    dim = int(field.dim or 0)
    seed = int_param(params, ("seed",), 0, 0, 2**31 - 1)
    if kind == "ANNOY":
        return Companion(kind, n_trees=int_param(params, ("n_trees",), 8, 1, 1024), seed=seed)
    nlist = int_param(params, ("nlist",), 128, 1, 65536)
    if kind == "IVF_SQ8":
        return Companion(kind, nlist=nlist, seed=seed)
    # default m: the largest divisor of dim up to dim / 8, i.e. codes of at most 1/32 of
    # the float vector's bytes
    default_m = max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
    m = int_param(params, ("m",), default_m, 1, dim)
    if dim % m:
        raise InvalidArgument(f"IVF_PQ: m ({m}) must divide the dimension ({dim})")
    nbits = int_param(params, ("nbits",), 8, 8, 8)
    return Companion(kind, nlist=nlist, m=m, nbits=nbits, seed=seed)


def _check_dims(field: FieldSchema, method: str, max_bit: int, max_half: int) -> None:
    limit = {DataType.BINARY_VECTOR: max_bit, DataType.FLOAT16_VECTOR: max_half,
             DataType.FLOAT_VECTOR: 2000}.get(field.dtype)
    if limit is not None and (field.dim or 0) > limit:
        raise InvalidArgument(f"pgvector {method} indexes {field.dtype.value} up to {limit} "
                              f"dimensions; {field.name!r} has {field.dim}")


def pg_index_name(table: str, index_name: str) -> str:
    """A Postgres index name unique per collection, within 63 bytes."""
    name = f"{table}__{index_name}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[:52]}_{digest}"


def popcount_index_name(table: str, index_name: str) -> str:
    """The btree on ``vecpg.popcount(field)`` that comes with an index on a binary field."""
    return pg_index_name(table, index_name + "_popcount")


def create_index_sql(cfg: IndexConfig, schema: str, table: str, pg_name: str,
                     field: FieldSchema, metric: Metric | None) -> sql.Composed | None:
    """The ``CREATE INDEX`` statement, or None when the index is an exact scan."""
    col = sql.Identifier(field.name)
    target = sql.Identifier(schema, table)
    name = sql.Identifier(pg_name)
    if isinstance(cfg, (Flat, Companion)):
        return None
    if isinstance(cfg, Scalar):
        return sql.SQL("CREATE INDEX {} ON {} USING {} ({})").format(
            name, target, sql.SQL(cfg.method), col)
    assert metric is not None
    ops = sql.SQL(opclass(metric, field.dtype) or "")
    if isinstance(cfg, IvfFlat):
        return sql.SQL("CREATE INDEX {} ON {} USING ivfflat ({} {}) WITH (lists = {})").format(
            name, target, col, ops, sql.Literal(cfg.nlist))
    return sql.SQL("CREATE INDEX {} ON {} USING hnsw ({} {}) "
                   "WITH (m = {}, ef_construction = {})").format(
        name, target, col, ops, sql.Literal(cfg.M), sql.Literal(cfg.efConstruction))


def config_from_catalog(index_type: str, params: dict[str, Any]) -> IndexConfig:
    kind = index_type.upper()
    if kind in ("FLAT", "BIN_FLAT"):
        return Flat(kind=kind)
    if kind in ("IVF_FLAT", "BIN_IVF_FLAT"):
        return IvfFlat(nlist=int(params.get("nlist", 128)), kind=kind)
    if kind in COMPANION_INDEX_TYPES:
        return Companion(kind, **{k: int(v) for k, v in params.items()
                                  if k in ("nlist", "m", "nbits", "n_trees", "seed")})
    if kind in ("HNSW", "AUTOINDEX"):
        return Hnsw(M=int(params.get("M", 16)), efConstruction=int(params.get("efConstruction", 64)))
    return Scalar(method=params.get("method", "btree"), kind=kind)
