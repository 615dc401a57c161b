"""Index kinds: one table (:data:`KINDS`) holding, per kind, its Milvus names, build
parameters with defaults and validation, search knobs, calibration grid and the DDL that
builds it. No other module compares index-type strings: they ask the kind.

Milvus names and parameters are accepted as they are (``index_type="HNSW",
params={"M": 16, "efConstruction": 64}``; at search ``{"ef": 64}`` / ``{"nprobe": 8}``)
and become frozen configs (:class:`Hnsw`, :class:`IvfFlat`, ...). Unknown or misspelled
parameters raise :class:`~vecpg.errors.InvalidArgument` naming the accepted ones.

| index_type              | built as                                  | search knob            |
|-------------------------|-------------------------------------------|------------------------|
| FLAT, BIN_FLAT          | nothing: exact scan                       | -                      |
| IVF_FLAT, BIN_IVF_FLAT  | pgvector ``ivfflat`` (lists = nlist)      | nprobe → ivfflat.probes|
| HNSW, AUTOINDEX         | pgvector ``hnsw`` (m = M, ef_construction)| ef → hnsw.ef_search    |
| IVF_SQ8, IVF_PQ, ANNOY  | a companion index (:mod:`vecpg.companion`)| nprobe / search_k      |
| INVERTED, STL_SORT, TRIE| btree (GIN for JSON and ARRAY) on a scalar| -                      |

A leaf module: it depends on the schema, the metrics and the errors only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from . import args
from .errors import InvalidArgument, MetricMismatch
from .metrics import Metric, opclass
from .schema import DataType, FieldSchema

# -- configs ------------------------------------------------------------------------------

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

    @property
    def trees(self) -> bool:
        """ANNOY: a forest of immutable trees holding the vectors (new rows stay pending
        until a rebuild), rather than IVF lists of codes that take new rows."""
        return self.kind == "ANNOY"

    def train_params(self) -> dict[str, Any]:
        """The parameters :func:`vecpg.quantize.train` takes for this kind."""
        return {k: getattr(self, k) for k in TRAIN_PARAMS[self.kind]}


IndexConfig = Flat | IvfFlat | Hnsw | Scalar | Companion
TRAIN_PARAMS = {"IVF_SQ8": ("nlist",), "IVF_PQ": ("nlist", "m", "nbits"), "ANNOY": ("n_trees",)}


def config_params(cfg: IndexConfig) -> dict[str, Any]:
    """A config's parameters as stored in the catalog."""
    if isinstance(cfg, Companion):
        return {**cfg.train_params(), "seed": cfg.seed}
    return {k: v for k, v in vars(cfg).items() if k != "kind"}


def int_param(params: Mapping[str, Any], names: tuple[str, ...], default: int, lo: int, hi: int,
              *, what: str = "index parameter") -> int:
    """The first of ``names`` present in ``params`` (else ``default``), checked to be an
    integer in ``[lo, hi]``."""
    for name in names:
        if name in params:
            return args.integer(params[name], f"{what} {name}", lo, hi)
    return default


# -- the kinds ----------------------------------------------------------------------------

# keys pymilvus may put into an index's params besides the kind's own: they say what the
# request says elsewhere, so they are accepted and carry no meaning here
_REQUEST_KEYS = frozenset({"index_type", "metric_type"})


@dataclass(frozen=True)
class IndexKind:
    """One index type: what it accepts at build and search, and how it is built.

    ``family``: flat | ivfflat | hnsw | companion | scalar | fulltext (BM25). ``params``:
    accepted build parameter names (aliases included). ``knob``: the search parameter that
    trades recall for speed (None: exact, or a scalar index); ``grid``: its calibration
    settings.
    ``vectors``: "binary" for the BIN_ kinds, "float" for companions, "any" otherwise, None
    for scalar kinds. ``parse`` validates a request into a config.
    """

    name: str
    family: str
    params: tuple[str, ...]
    knob: str | None
    grid: tuple[int, ...]
    vectors: str | None
    parse: Callable[[IndexKind, dict[str, Any], FieldSchema, Metric | None], IndexConfig]

    @property
    def companion(self) -> bool:
        """Built and searched by vecpg itself (quantized codes beside the table)."""
        return self.family == "companion"

    @property
    def strategy(self) -> str | None:
        """The planner strategy that searches through this kind (None: exact only)."""
        return {"hnsw": "hnsw", "ivfflat": "ivfflat", "companion": "companion"}.get(self.family)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` without the request keys; raises on names the kind does not take."""
        unknown = sorted(set(params) - set(self.params) - _REQUEST_KEYS)
        if unknown:
            accepted = ", ".join(self.params) or "none"
            raise InvalidArgument(f"unknown {self.name} index parameter"
                                  f"{'s' if len(unknown) > 1 else ''} "
                                  f"{', '.join(map(repr, unknown))}; accepted: {accepted}")
        return {k: v for k, v in params.items() if k not in _REQUEST_KEYS}

    def build_config(self, params: Mapping[str, Any] | None, field: FieldSchema,
                     metric: Metric | None) -> IndexConfig:
        """Validate a Milvus-style index request for ``field`` and return its config."""
        if (self.vectors is None) == field.dtype.is_vector:
            if field.dtype.is_vector:
                raise InvalidArgument(f"index type {self.name} is for scalar fields; "
                                      f"{field.name!r} is {field.dtype.value}")
            raise InvalidArgument(f"index type {self.name} does not apply to scalar field "
                                  f"{field.name!r}; use one of {', '.join(SCALAR_KINDS)}")
        return self.parse(self, self.check_params(params or {}), field, metric)

    def from_catalog(self, params: Mapping[str, Any]) -> IndexConfig:
        """The config of an index recorded in the catalog (validated when it was made)."""
        p = {k: int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
             for k, v in params.items()}
        if self.family == "flat":
            return Flat(kind=self.name)
        if self.family == "ivfflat":
            return IvfFlat(nlist=int(p.get("nlist", 128)), kind=self.name)
        if self.family == "hnsw":
            return Hnsw(M=int(p.get("M", 16)), efConstruction=int(p.get("efConstruction", 64)))
        if self.family == "companion":
            return Companion(self.name, **{k: int(v) for k, v in p.items()
                                           if k in ("nlist", "m", "nbits", "n_trees", "seed")})
        if self.family == "fulltext":
            return Scalar(method="gin", kind=self.name)
        return Scalar(method=str(p.get("method", "btree")), kind=self.name)

    def nlist(self, params: Mapping[str, Any]) -> int:
        """The number of IVF lists of an index of this kind (0: not an IVF kind)."""
        return int(params.get("nlist", 128)) if "nlist" in self.params else 0


def _flat(kind: IndexKind, params: dict[str, Any], field: FieldSchema,
          metric: Metric | None) -> IndexConfig:
    _check_binary(kind, field)
    return Flat(kind=kind.name)


def _ivfflat(kind: IndexKind, params: dict[str, Any], field: FieldSchema,
             metric: Metric | None) -> IndexConfig:
    binary = _check_binary(kind, field)
    metric = _indexable(metric, field)
    if field.dtype is DataType.SPARSE_FLOAT_VECTOR:
        raise InvalidArgument("pgvector has no IVF index for sparse vectors; use HNSW")
    if binary and metric is not Metric.HAMMING:
        raise MetricMismatch(f"BIN_IVF_FLAT supports HAMMING only, not {metric.value}; "
                             "use HNSW for JACCARD/TANIMOTO")
    _check_dims(field, "ivfflat", 64000 if binary else 2000, 4000)
    return IvfFlat(nlist=int_param(params, ("nlist", "lists"), 128, 1, 32768), kind=kind.name)


def _hnsw(kind: IndexKind, params: dict[str, Any], field: FieldSchema,
          metric: Metric | None) -> IndexConfig:
    binary = field.dtype is DataType.BINARY_VECTOR
    _indexable(metric, field)
    _check_dims(field, "hnsw", 64000 if binary else 2000, 4000)
    m = int_param(params, ("M", "m"), 16, 2, 100)
    efc = int_param(params, ("efConstruction", "ef_construction"), 64, 4, 1000)
    if efc < 2 * m:
        raise InvalidArgument(f"efConstruction ({efc}) must be at least 2 * M ({2 * m})")
    return Hnsw(M=m, efConstruction=efc)


def _companion(kind: IndexKind, params: dict[str, Any], field: FieldSchema,
               metric: Metric | None) -> IndexConfig:
    if field.dtype is not DataType.FLOAT_VECTOR:
        raise InvalidArgument(f"{kind.name} indexes FLOAT_VECTOR fields; {field.name!r} is "
                              f"{field.dtype.value}")
    if metric not in (Metric.L2, Metric.IP, Metric.COSINE):
        raise MetricMismatch(f"{kind.name} supports L2, IP and COSINE, not "
                             f"{metric.value if metric else None}")
    dim = int(field.dim or 0)
    seed = int_param(params, ("seed",), 0, 0, 2**31 - 1)
    if kind.name == "ANNOY":
        return Companion(kind.name, n_trees=int_param(params, ("n_trees",), 8, 1, 1024),
                         seed=seed)
    nlist = int_param(params, ("nlist",), 128, 1, 65536)
    if kind.name == "IVF_SQ8":
        return Companion(kind.name, nlist=nlist, seed=seed)
    # default m: the largest divisor of dim up to dim / 8, i.e. codes of at most 1/32 of
    # the float vector's bytes
    default_m = max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
    m = int_param(params, ("m",), default_m, 1, dim)
    if dim % m:
        raise InvalidArgument(f"IVF_PQ: m ({m}) must divide the dimension ({dim})")
    nbits = int_param(params, ("nbits",), 8, 8, 8)
    return Companion(kind.name, nlist=nlist, m=m, nbits=nbits, seed=seed)


def _scalar(kind: IndexKind, params: dict[str, Any], field: FieldSchema,
            metric: Metric | None) -> IndexConfig:
    method = "gin" if field.dtype in (DataType.JSON, DataType.ARRAY) else "btree"
    return Scalar(method=method, kind=kind.name)


def _bm25(kind: IndexKind, params: dict[str, Any], field: FieldSchema,
          metric: Metric | None) -> IndexConfig:
    if not field.is_function_output:
        raise InvalidArgument(f"index type {kind.name} with metric BM25 is for the output of "
                              f"a BM25 function; {field.name!r} is not one")
    return Scalar(method="gin", kind=kind.name)


def _check_binary(kind: IndexKind, field: FieldSchema) -> bool:
    binary = field.dtype is DataType.BINARY_VECTOR
    if kind.vectors == "binary" and not binary:
        raise InvalidArgument(f"{kind.name} is for BINARY_VECTOR fields; {field.name!r} is "
                              f"{field.dtype.value}")
    return binary


def _indexable(metric: Metric | None, field: FieldSchema) -> Metric:
    if metric is None or opclass(metric, field.dtype) is None:
        flat = "BIN_FLAT" if field.dtype is DataType.BINARY_VECTOR else "FLAT"
        raise MetricMismatch(f"metric {metric.value if metric else None} is searched by "
                             f"exact scan only; use index_type {flat}")
    return metric


def _check_dims(field: FieldSchema, method: str, max_bit: int, max_half: int) -> None:
    limit = {DataType.BINARY_VECTOR: max_bit, DataType.FLOAT16_VECTOR: max_half,
             DataType.FLOAT_VECTOR: 2000, DataType.BFLOAT16_VECTOR: 2000,
             DataType.INT8_VECTOR: 2000}.get(field.dtype)  # the last two are float32 vector
    if limit is not None and (field.dim or 0) > limit:
        raise InvalidArgument(f"pgvector {method} indexes {field.dtype.value} up to {limit} "
                              f"dimensions; {field.name!r} has {field.dim}")


HNSW_GRID = (10, 15, 20, 30, 40, 64, 100, 200, 400, 800)
IVF_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
ANNOY_GRID = (500, 1000, 2000, 4000, 8000, 16000, 32000, 64000)  # search_k
_HNSW_P = ("M", "m", "efConstruction", "ef_construction")
_CMP_P = {"IVF_SQ8": ("nlist", "seed"), "IVF_PQ": ("nlist", "m", "nbits", "seed"),
          "ANNOY": ("n_trees", "seed")}

KINDS: dict[str, IndexKind] = {k.name: k for k in (
    IndexKind("FLAT", "flat", (), None, (), "any", _flat),
    IndexKind("BIN_FLAT", "flat", (), None, (), "binary", _flat),
    IndexKind("IVF_FLAT", "ivfflat", ("nlist", "lists"), "nprobe", IVF_GRID, "any", _ivfflat),
    IndexKind("BIN_IVF_FLAT", "ivfflat", ("nlist", "lists"), "nprobe", IVF_GRID, "binary",
              _ivfflat),
    IndexKind("HNSW", "hnsw", _HNSW_P, "ef", HNSW_GRID, "any", _hnsw),
    IndexKind("IVF_SQ8", "companion", _CMP_P["IVF_SQ8"], "nprobe", IVF_GRID, "float",
              _companion),
    IndexKind("IVF_PQ", "companion", _CMP_P["IVF_PQ"], "nprobe", IVF_GRID, "float", _companion),
    IndexKind("ANNOY", "companion", _CMP_P["ANNOY"], "search_k", ANNOY_GRID, "float",
              _companion),
    # a BM25 function's output: scored from the GIN index on its input's terms
    IndexKind("SPARSE_INVERTED_INDEX", "fulltext", ("bm25_k1", "bm25_b", "inverted_index_algo",
                                                    "drop_ratio_build"), None, (), "any", _bm25),
    *(IndexKind(n, "scalar", (), None, (), None, _scalar)
      for n in ("INVERTED", "STL_SORT", "TRIE", "BTREE")),
)}
SCALAR_KINDS = tuple(n for n, k in KINDS.items() if k.family == "scalar")
COMPANION_KINDS = tuple(n for n, k in KINDS.items() if k.companion)


def kind_of(index_type: str) -> IndexKind:
    """The kind named ``index_type`` (case-insensitive; AUTOINDEX is HNSW)."""
    name = str(index_type or "AUTOINDEX").strip().upper()
    kind = KINDS.get("HNSW" if name == "AUTOINDEX" else name)
    if kind is None:
        raise InvalidArgument(f"unknown index type {index_type!r}; expected one of "
                              f"AUTOINDEX, {', '.join(KINDS)}")
    return kind


def request_kind(index_type: str | None, field: FieldSchema) -> IndexKind:
    """The kind an index request on ``field`` builds: AUTOINDEX is HNSW on a vector field
    and INVERTED on a scalar one."""
    name = str(index_type or "AUTOINDEX").strip().upper()
    if field.is_function_output:
        if name not in ("AUTOINDEX", "SPARSE_INVERTED_INDEX", "SPARSE_WAND"):
            raise InvalidArgument(f"{field.name!r} is a BM25 function output: index it with "
                                  f"SPARSE_INVERTED_INDEX or AUTOINDEX, not {index_type!r}")
        return KINDS["SPARSE_INVERTED_INDEX"]
    if name == "AUTOINDEX" and not field.dtype.is_vector:
        return KINDS["INVERTED"]
    if name == "BRUTE_FORCE":  # Milvus Lite's exact index
        return KINDS["BIN_FLAT" if field.dtype is DataType.BINARY_VECTOR else "FLAT"]
    if field.dtype is DataType.SPARSE_FLOAT_VECTOR and name in (
            "AUTOINDEX", "SPARSE_INVERTED_INDEX", "SPARSE_WAND"):
        # Milvus' sparse indexes: pgvector's HNSW when the field has a dimension (it needs
        # one), else an exact scan
        return KINDS["HNSW" if field.dim is not None else "FLAT"]
    return kind_of(name)


# -- search knobs -------------------------------------------------------------------------

# Every search parameter vecpg acts on; the planner's strategies say which force what.
SEARCH_KNOBS = ("ef", "nprobe", "search_k", "rerank", "reorder_k", "exact", "iterative_scan",
                "radius", "range_filter")
# Milvus search parameters with no meaning on Postgres: accepted so Milvus code runs, and
# ignored (level/ignore_growing tune Milvus' own segments and AUTOINDEX)
IGNORED_KNOBS = ("level", "ignore_growing", "drop_ratio_search", "max_empty_result_buckets",
                 "page_retain_order", "enable_recall_calculation", "hints")


def check_search_knobs(knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs vecpg acts on; raises :class:`InvalidArgument` for a name it does not know
    (a misspelled knob must not be silently ignored)."""
    unknown = sorted(set(knobs) - set(SEARCH_KNOBS) - set(IGNORED_KNOBS))
    if unknown:
        raise InvalidArgument(f"unknown search parameter{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))}; accepted: "
                              f"{', '.join(SEARCH_KNOBS)} (and Milvus' "
                              f"{', '.join(IGNORED_KNOBS)}, which have no effect here)")
    return {k: v for k, v in knobs.items() if k in SEARCH_KNOBS}


# -- DDL ----------------------------------------------------------------------------------

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
    """The ``CREATE INDEX`` statement, or None when the index is no Postgres index (an
    exact scan, or a companion index)."""
    col = sql.Identifier(field.name)
    target = sql.Identifier(schema, table)
    name = sql.Identifier(pg_name)
    if isinstance(cfg, (Flat, Companion)):
        return None
    if isinstance(cfg, Scalar):
        return sql.SQL("CREATE INDEX {} ON {} USING {} ({})").format(
            name, target, sql.SQL(cfg.method), col)
    ops = sql.SQL(opclass(metric, field.dtype) or "") if metric else sql.SQL("")
    if isinstance(cfg, IvfFlat):
        return sql.SQL("CREATE INDEX {} ON {} USING ivfflat ({} {}) WITH (lists = {})").format(
            name, target, col, ops, sql.Literal(cfg.nlist))
    return sql.SQL("CREATE INDEX {} ON {} USING hnsw ({} {}) "
                   "WITH (m = {}, ef_construction = {})").format(
        name, target, col, ops, sql.Literal(cfg.M), sql.Literal(cfg.efConstruction))
