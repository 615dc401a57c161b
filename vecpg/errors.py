"""The vecpg exception hierarchy.

Every error vecpg raises on purpose is a :class:`VecpgError`. Argument problems are also
``ValueError`` (or ``TypeError``), lookups that fail are also ``LookupError``, so callers can
catch either the vecpg class or the builtin one. Errors from the database are translated at
one boundary (:func:`translate`) and keep the psycopg error as ``__cause__``.
"""

from __future__ import annotations

from types import TracebackType

import psycopg
import psycopg.errors as pgerr


class VecpgError(Exception):
    """Root of every error vecpg raises."""


class InvalidArgument(VecpgError, ValueError):
    """A value passed to vecpg is not acceptable (the message says which and why)."""


class InvalidName(InvalidArgument):
    """A collection, field, index or partition name breaks the naming rules."""


class SchemaError(InvalidArgument):
    """Data does not fit the collection's schema: unknown or missing field, wrong type."""


class FieldTypeError(SchemaError, TypeError):
    """A value has the wrong type for its field."""


class DimensionMismatch(SchemaError):
    """A vector's dimension differs from the field's."""


class InvalidVector(SchemaError):
    """A vector holds NaN or infinity, or is otherwise unusable."""


class ValueTooLong(SchemaError):
    """A VARCHAR value is longer than the field's max_length."""


class MetricMismatch(InvalidArgument):
    """The metric does not apply to the vector type (e.g. TANIMOTO on float vectors)."""


class FilterError(InvalidArgument):
    """A filter expression is malformed or refers to something that does not exist.

    ``position`` is the 0-based character offset of the offending token, ``token`` its text.
    """

    def __init__(self, message: str, *, expression: str = "", position: int | None = None,
                 token: str | None = None) -> None:
        self.expression = expression
        self.position = position
        self.token = token
        where = ""
        if position is not None:
            where = f" at position {position}"
            if token is not None:
                where += f" ({token!r})"
            if expression:
                where += f"\n  {expression}\n  {' ' * position}^"
        super().__init__(message + where)


class NotFound(VecpgError, LookupError):
    """Something looked up by name does not exist."""


class CollectionNotFound(NotFound):
    """No collection of that name."""


class IndexNotFound(NotFound):
    """No index of that name on the collection."""


class PartitionNotFound(NotFound):
    """No partition of that name in the collection."""


class IndexNotReady(VecpgError):
    """A companion index has no usable trained version (its build failed or never ran)."""


class AlreadyExists(VecpgError):
    """A collection, index or partition of that name exists already."""


class DuplicateKey(VecpgError):
    """An insert repeats a primary key that exists (or repeats it within the batch)."""


class ServerError(VecpgError):
    """The database refused an operation for a reason vecpg did not foresee."""


class PermissionDenied(ServerError, PermissionError):
    """The database role may not do this (Postgres' grants or row-level security)."""


class ServerUnavailable(ServerError):
    """The server cannot be reached, or the connection to it was lost (it stopped,
    restarted or dropped the connection). The next call opens a new connection."""


class PoolTimeout(ServerError):
    """Every pooled connection stayed busy for the whole wait (``pool_size`` of them, each
    held by a call or by ``client.connection()``)."""


class UnsupportedServer(VecpgError):
    """The Postgres server lacks something vecpg needs (e.g. pgvector >= 0.8)."""


class NotSupported(VecpgError, NotImplementedError):
    """A Milvus feature with no meaning on one Postgres (query-node replicas, resource
    groups, segments, ...) or not built yet; the message says what to use instead."""


class _Translate:
    """The context manager :func:`translate` returns; a class rather than a generator
    because it wraps every search (the generator form cost ~2 µs a call)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or not isinstance(exc, psycopg.Error):
            return  # no error, or one vecpg raised itself: passes through unchanged
        if isinstance(exc, pgerr.UniqueViolation):
            raise DuplicateKey(_pg_message(exc)) from exc
        if isinstance(exc, pgerr.StringDataRightTruncation):
            raise ValueTooLong(_pg_message(exc)) from exc
        if isinstance(exc, psycopg.DataError):  # SQLSTATE class 22: bad values, overflow
            raise InvalidArgument(_pg_message(exc)) from exc
        if isinstance(exc, (pgerr.DuplicateTable, pgerr.DuplicateObject)):
            raise AlreadyExists(_pg_message(exc)) from exc
        if isinstance(exc, pgerr.UndefinedTable):
            raise CollectionNotFound(_pg_message(exc)) from exc
        if isinstance(exc, pgerr.InsufficientPrivilege):
            raise PermissionDenied(_pg_message(exc)) from exc
        if isinstance(exc, pgerr.ReadOnlySqlTransaction):
            raise ServerError(f"{_pg_message(exc)}: the server is read-only (a standby?); "
                              "writes go to the primary") from exc
        if _connection_lost(exc):
            raise ServerUnavailable(f"lost the connection to the server ({_pg_message(exc)});"
                                    " is it running? The next call reconnects") from exc
        raise ServerError(_pg_message(exc)) from exc


_TRANSLATE = _Translate()


def translate() -> _Translate:
    """Translate psycopg errors raised inside the ``with`` block into vecpg errors.

    Errors vecpg raised itself pass through unchanged.
    """
    return _TRANSLATE


def _connection_lost(e: psycopg.Error) -> bool:
    """True for errors that mean the server is gone rather than that a statement failed:
    no SQLSTATE (the socket closed), class 08 (connection exception), or an administrator
    shutdown (57P01-57P03)."""
    if not isinstance(e, psycopg.OperationalError):
        return False
    state = e.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _pg_message(e: psycopg.Error) -> str:
    diag = e.diag
    msg = diag.message_primary or str(e)
    if diag.message_detail:
        msg += f" ({diag.message_detail})"
    return msg
