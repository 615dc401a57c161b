"""Binary COPY of a validated :class:`~vecpg.ingest.Batch` into a table.

The COPY stream is built here, not by ``Copy.write_row``: fixed-width columns (numbers,
``timestamptz``, ``vector`` — also for INT8 and BFLOAT16 vectors —, ``halfvec``, ``bit``,
the partition) are laid out as one numpy structured array
with big-endian fields per chunk of rows; variable-width cells (text, jsonb, arrays,
sparsevec, NULLs) are interleaved with ``bytes.join``. pgvector's binary formats: vector =
int16 dim, int16 0, float4[dim]; halfvec = the same with float2; bit = int32 length, bytes;
sparsevec = int32 dim, int32 nnz, int32 0, int32 indices[nnz] (0-based), float4 values[nnz];
Postgres' timestamptz = int64 microseconds since 2000-01-01 UTC.
Measured: 1.2-1.3x the rows/s of psycopg's ``write_row`` with pgvector's dumpers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from .errors import FieldTypeError, InvalidArgument, translate
from .schema import AS_FLOAT32, DataType

if TYPE_CHECKING:
    from .ingest import Batch, Column
    from .session import Db

DT = DataType
_BE = {DT.BOOL: "u1", DT.INT8: ">i2", DT.INT16: ">i2", DT.INT32: ">i4", DT.INT64: ">i8",
       DT.FLOAT: ">f4", DT.DOUBLE: ">f8",
       DT.TIMESTAMPTZ: ">i8"}  # wire format of each fixed-width scalar
_ELEM_OID = {DT.BOOL: 16, DT.INT8: 21, DT.INT16: 21, DT.INT32: 23, DT.INT64: 20,
             DT.FLOAT: 700, DT.DOUBLE: 701, DT.VARCHAR: 1043}  # array element type oids
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # binary COPY header: signature, flags, ext
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_I4 = struct.Struct(">i").pack
_CHUNK_BYTES = 1 << 20  # larger chunks measured no faster: the server is the bottleneck


# -- binary COPY ---------------------------------------------------------------------------

_Fill = Callable[[np.ndarray, slice], None]


def _fixed_layout(c: Column, j: int) -> tuple[list[tuple[Any, ...]], _Fill] | None:
    """Struct fields and a filler for a fixed-width column, or None if it is variable."""
    L, H, V = f"l{j}", f"h{j}", f"v{j}"
    vals, d = c.values, c.dtype
    head: tuple[int, int] | int | None = None
    fields: list[tuple[Any, ...]]
    if c.const is not None:
        vals = np.frombuffer(c.const.encode("utf-8"), np.uint8)
        fields, width = [(L, ">i4"), (V, "u1", (vals.size,))], vals.size
    elif d in _BE and c.nulls is None:
        fields, width = [(L, ">i4"), (V, _BE[d])], np.dtype(_BE[d]).itemsize
    elif d in AS_FLOAT32 or d is DT.FLOAT16_VECTOR:
        fe, dim = (">f4" if d in AS_FLOAT32 else ">f2"), vals.shape[1]
        fields = [(L, ">i4"), (H, ">i2", (2,)), (V, fe, (dim,))]
        width, head = 4 + np.dtype(fe).itemsize * dim, (dim, 0)
    elif d is DT.BINARY_VECTOR:
        fields = [(L, ">i4"), (H, ">i4"), (V, "u1", (vals.shape[1],))]
        width, head = 4 + vals.shape[1], c.field.vector_dim if c.field else 0
    else:
        return None

    def fill(st: np.ndarray, sl: slice) -> None:
        st[L] = width
        if head is not None:
            st[H] = head
        st[V] = vals if c.const is not None else vals[sl]
    return fields, fill


def _cells(c: Column, enc: str) -> list[bytes]:
    """Each row's cell (int32 length, then the value) of a variable-width column."""
    d, vals = c.dtype, c.values
    if d in _BE:  # a numeric column with NULLs
        w = np.dtype(_BE[d]).itemsize
        raw = vals.astype(_BE[d]).tobytes()
        nulls = c.nulls.tolist() if c.nulls is not None else [False] * len(vals)
        return [_NULL if m else _I4(w) + raw[i * w:(i + 1) * w] for i, m in enumerate(nulls)]
    if d is DT.VARCHAR:
        return [_NULL if s is None else _cell(s.encode(enc)) for s in vals]
    if d is DT.JSON:  # jsonb's binary format: version 1, then the text
        return [_NULL if t is None else _cell(b"\x01" + t.encode(enc)) for t in vals]
    if d is DT.SPARSE_FLOAT_VECTOR:
        dim = c.field.vector_dim if c.field else 0
        return [_cell(struct.pack(">iii", dim, len(i), 0) + i.astype(">i4").tobytes()
                      + v.astype(">f4").tobytes()) for i, v in vals]
    et = c.field.element_type if c.field else None  # ARRAY
    if d is not DT.ARRAY or et is None:
        raise InvalidArgument(f"cannot encode column {c.name!r} of type {d.value}")
    return [_array_cell(et, a, enc) for a in vals]


def _cell(b: bytes) -> bytes:
    return _I4(len(b)) + b


def _array_cell(et: DataType, a: list[Any] | None, enc: str) -> bytes:
    """Postgres' binary array: ndim, has-nulls flag, element oid, (length, lower bound),
    then the elements' cells."""
    if a is None:
        return _NULL
    if not a:
        return _cell(struct.pack(">iii", 0, 0, _ELEM_OID[et]))
    head = struct.pack(">iiiii", 1, 0, _ELEM_OID[et], len(a), 1)
    if et is DT.VARCHAR:
        return _cell(head + b"".join(_cell(s.encode(enc)) for s in a))
    st = np.empty(len(a), [("l", ">i4"), ("v", _BE[et])])
    st["l"] = np.dtype(_BE[et]).itemsize
    st["v"] = a
    return _cell(head + st.tobytes())


def _chunks(n: int, fixed: list[tuple[list[tuple[Any, ...]], _Fill]],
            var: list[list[bytes]]) -> Iterator[memoryview]:
    """The binary COPY rows (no header or trailer) in chunks of about 1 MB."""
    dtype = np.dtype([("n", ">i2")] + [f for fields, _ in fixed for f in fields])
    width = dtype.itemsize
    step = max(64, _CHUNK_BYTES // (width + sum(len(cells[0]) for cells in var)))
    k = 1 + len(var)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        part = np.empty(hi - lo, dtype)
        part["n"] = len(fixed) + len(var)
        for _, fill in fixed:
            fill(part, slice(lo, hi))
        mv = part.view(np.uint8).data
        if not var:
            yield mv  # every column is fixed-width: the struct array *is* the COPY data
            continue
        pieces: list[Any] = [None] * ((hi - lo) * k)
        pieces[0::k] = [mv[i:i + width] for i in range(0, len(mv), width)]
        for t, cells in enumerate(var):
            pieces[1 + t::k] = cells[lo:hi]
        yield memoryview(b"".join(pieces))  # psycopg slices it into messages without copies


def copy_batch(db: Db, table: sql.Composable, batch: Batch) -> None:
    """``COPY table (columns) FROM STDIN (FORMAT BINARY)`` of a prepared batch.

    The fixed-width columns come first in the COPY column list. Run it inside a
    transaction for all-or-nothing; database errors (e.g. a primary key that exists
    already) come back as vecpg errors, the psycopg error as ``__cause__``.
    """
    enc = db.raw.info.encoding
    fixed, var, order, rest = [], [], [], []
    for j, c in enumerate(batch.cols):
        if (lay := _fixed_layout(c, j)) is not None:
            fixed.append(lay)
            order.append(c.name)
        else:
            rest.append(c)
    for c in rest:
        try:
            var.append(_cells(c, enc))
        except UnicodeEncodeError as e:  # only when the client encoding is not UTF-8
            raise FieldTypeError(f"field {c.name!r}: {e.object[e.start:e.end]!r} cannot be "
                                 f"sent in the connection's encoding {enc}") from None
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        table, sql.SQL(", ").join(sql.Identifier(x) for x in order + [c.name for c in rest]))
    with translate(), db.copy(stmt) as cp:
        # With write() psycopg passes our bytes through: the header and trailer are ours.
        cp.write(_SIGNATURE)
        for chunk in _chunks(batch.n, fixed, var):
            cp.write(chunk)
        cp.write(_TRAILER)
