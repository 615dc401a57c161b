"""Milvus boolean filter expressions → parameterized Postgres SQL.

A real parser (lark, LALR) builds a tree; each node compiles to ``psycopg.sql`` with ``%s``
placeholders and its values in a params list, so user text reaches SQL only as parameters
or quoted identifiers. Example::

    frag = compile_filter('age > 20 and tag in ["a", "b"] and meta["color"] == "red"', schema)
    cur.execute(sql.SQL("SELECT id FROM t WHERE {}").format(frag.sql), frag.params)
    frag = compile_filter("id in {ids} and age > {low}", schema, params={"ids": [1, 2], "low": 9})

The grammar is Milvus' (``Plan.g4``), with its precedence from loosest: ``or``, ``and``,
``not``, ``|``, ``^``, ``&``, comparisons (and ``in``, ``like``, ``is null``), ``<< >>``,
``+ -``, ``* / %``, unary ``- + ~``, ``**``; comparisons, ``in``, ``like`` and ``is null``
share one level and do not chain (but for ranges). As in Plan.g4 (and C), the bitwise
operators bind looser than comparisons: ``x & 1 == 1`` is ``x & (1 == 1)``, an error that
says to write ``(x & 1) == 1``. ``not`` binds looser than in Plan.g4 (``not a > 1`` is
``not (a > 1)``): Milvus' reading fails there (``not`` of a number) and, on booleans, gives
the same result. Literals: decimal, ``0x1F``, ``0b101``, octal with a leading zero (``017``
is 15, as in Milvus) or ``0o17``, hex floats (``0x1.8p3``), strings with escapes, raw strings
``r"a\\b"`` (no escape processing; ``\\"`` does not end one and stays), trailing commas
in lists and calls.

Semantics chosen where Milvus is loose:
- JSON values (JSON fields, dynamic fields) are compared by their JSON type: a number
  comparison matches only rows whose value there is a number, a string comparison only
  strings; other rows (and missing keys) simply do not match — never a cast error.
- ``in`` / ``not in`` are an OR / AND of ``==`` / ``!=``: on a JSON value of another type
  (or a missing key) both are unknown, so neither matches.
- Integer literals beyond int64 are compared as numeric (they match nothing out of range);
  ``array_contains`` with a value outside the element type matches nothing, as does an index
  past the end of an array (``tags[99999999999]``).
- Arithmetic is exact, on numeric: ``/`` is true division, ``%`` a modulo. A row where the
  result is undefined or beyond the double range (x / 0, 0 ** -1, (-8) ** 0.5, 10 ** 400)
  gets an unknown value there (no match) instead of failing the whole query. A comparison
  of a plain column with a literal stays a plain comparison, so btree indexes serve it.
- Ranges chain two comparisons in one direction only: ``1 < age <= 5``, ``5 > age > 1``.
- ``tags[0]`` indexes ARRAY fields from 0, as Milvus does. An integer step in a JSON path
  (``meta["a"][0]``) finds nothing on a JSON scalar (Postgres' ``-> 0`` would return it).
- ``& | ^ ~ << >>`` compute on int64, as Milvus' integers: operands are integer fields,
  integer literals (an int64 one; anything else is a FilterError, as are float fields and
  ``/``), and JSON values or arithmetic that are whole numbers within int64 *in that row* —
  other rows are unknown there. ``<<`` and ``>>`` are exact (``x * 2**n``, ``floor(x / 2**n)``):
  a result beyond int64 or a negative count is unknown, never wrapped around.
- ``tags == [1, 2]`` / ``!=`` compare whole arrays, in order (ARRAY fields in their element
  type, JSON values as JSON: numbers by value). A JSON value that is not an array is unknown.
- ``exists meta["a"]["b"]`` is true where the key path is present, also when its value is
  JSON null (where ``is null`` is also true); it is never unknown. It needs a key path.
- ``{name}`` placeholders take ``params[name]`` — bool, int, float, str, or a (nested) list of
  them, tuples and numpy values too — as a literal, bound as a parameter; the SQL text
  depends on the expression only. A missing name or another type is a FilterError.
- The ``json_contains*`` and ``array_contains*`` functions take ARRAY and JSON fields alike.
- TIMESTAMPTZ fields compare with ``ISO "2025-01-01T00:00:00Z"`` literals (Plan.g4's ``ISO``
  token; ``ISO {t}`` too), with datetime templates and with plain strings, all read as ISO
  8601 (``T`` or a space, an offset, ``Z`` or none: then the ``timezone`` argument's, UTC by
  default) and bound as timestamptz parameters: ``ts >= ISO "2025-01-01T00:00:00+08:00"``,
  ``ISO "2025-01-01 08:00:00" < ts``, ``ts in [ISO "...", ...]``, ranges; a date alone
  is not a time (FilterError).
  ``ts + INTERVAL "P1DT2H" > ISO "..."`` (Plan.g4's ``INTERVAL``: ISO 8601 durations
  ``PnYnMnWnDTnHnMnS`` in whole units, or a timedelta template) adds on the UTC calendar
  (months before days before hours, as Postgres: 2025-01-31 + P1M is 2025-02-28), whatever
  the session's TimeZone; more than 4000 years of intervals is a FilterError, so no row
  can leave Postgres' range. As in Milvus, the interval goes with the field; beyond
  Plan.g4, a chain of intervals and either side of the comparison are allowed.
"""

from __future__ import annotations

import ast
import datetime as _dt
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from psycopg import sql
from psycopg.types.json import Jsonb

from .errors import FilterError, InvalidArgument
from .fulltext import tsv_column
from .schema import (
    META_COLUMN,
    UTC,
    CollectionSchema,
    DataType,
    FieldSchema,
    parse_timestamp,
    time_zone,
)

MAX_LENGTH = 65536
MAX_DEPTH = 200
MAX_NUMBER_LENGTH = 1000  # characters in a number literal; int() refuses > 4300 digits
# |arithmetic results| beyond this are unknown: below DBL_MAX, so they always cast to double
_NUM_LIMIT = "1e308"
# bound on partial products: two of them multiply to < 10**131072, numeric's limit
_PARTIAL_LIMIT = "1e60000"
_INT_RANGE = {DataType.INT8: 2**15, DataType.INT16: 2**15, DataType.INT32: 2**31,
              DataType.INT64: 2**63}  # the Postgres element type's range (smallint for INT8)
_REAL_MAX = 3.4028234663852886e38
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
MAX_PARAM_DEPTH = 32  # nesting of lists in a template value
# ISO 8601 durations as Milvus' parser takes them (whole numbers of each unit; weeks too)
_DURATION_RE = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                          r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z")
# |intervals| added to one time, at most: 4000 years keeps every result of a stored time
# (years 1-9999) inside Postgres' timestamp range, so the query cannot fail on a row
_MAX_INTERVAL_DAYS = 4000 * 366

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr OR and_expr -> or_
?and_expr: not_expr | and_expr AND not_expr -> and_
?not_expr: bit_or | NOT not_expr -> not_
?bit_or: bit_xor | bit_or BOR bit_xor -> bitor
?bit_xor: bit_and | bit_xor BXOR bit_and -> bitxor
?bit_and: predicate | bit_and BAND predicate -> bitand
?predicate: shift
    | shift (COMP_OP shift)+ -> compare
    | shift IN (list | template) -> in_
    | shift NOT IN (list | template) -> not_in
    | shift LIKE (STRING | RAW_STRING | template) -> like
    | shift IS NULL -> is_null
    | shift IS NOT NULL -> is_not_null
?shift: sum | shift SHIFT_OP sum -> shift
?sum: product | sum ADD_OP product -> arith
?product: unary | product MUL_OP unary -> arith
?unary: power | MINUS unary -> neg | PLUS unary | BNOT unary -> bnot
?power: atom | atom POW unary -> pow
?atom: literal | path | call | list | template | exists | iso | interval | "(" or_expr ")"
exists: EXISTS atom
iso: ISO (STRING | RAW_STRING | template)
interval: INTERVAL (STRING | RAW_STRING | template)
template: "{" NAME "}"
call: NAME "(" [or_expr ("," or_expr)* [","]] ")"
path: (NAME | META) ("[" (STRING | RAW_STRING | INT) "]")*
list: "[" [or_expr ("," or_expr)* [","]] "]"
literal: NUMBER | HEX_FLOAT | PREFIXED_INT | STRING | RAW_STRING | TRUE | FALSE

OR.2: /(?i:or)(?![A-Za-z0-9_])/ | "||"
AND.2: /(?i:and)(?![A-Za-z0-9_])/ | "&&"
NOT.2: /(?i:not)(?![A-Za-z0-9_])/ | /!(?!=)/
IN.2: /(?i:in)(?![A-Za-z0-9_])/
LIKE.2: /(?i:like)(?![A-Za-z0-9_])/
IS.2: /(?i:is)(?![A-Za-z0-9_])/
NULL.2: /(?i:null)(?![A-Za-z0-9_])/
TRUE.2: /(?i:true)(?![A-Za-z0-9_])/
FALSE.2: /(?i:false)(?![A-Za-z0-9_])/
EXISTS.2: /(?i:exists)(?![A-Za-z0-9_])/
ISO.2: /(?i:iso)(?=\s*([rR]?["']|\{))/
INTERVAL.2: /(?i:interval)(?=\s*([rR]?["']|\{))/
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
SHIFT_OP.2: "<<" | ">>"
BAND: "&"
BOR: "|"
BXOR: "^"
BNOT: "~"
POW.2: "**"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
MINUS.3: "-"
PLUS.3: "+"
META: "$meta"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
INT: /\d+/
HEX_FLOAT.4: /0[xX]([0-9a-fA-F]*\.[0-9a-fA-F]+|[0-9a-fA-F]+\.?)[pP][+-]?\d+/
PREFIXED_INT.3: /0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
STRING: /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/
RAW_STRING.3: /[rR](?:"(?:[^"\\\r\n]|\\[^\r\n])*"|'(?:[^'\\\r\n]|\\[^\r\n])*')/
%ignore /\s+/
"""

_parser = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@dataclass(frozen=True)
class Fragment:
    """A piece of SQL with ``%s`` placeholders and the values for them, in order."""

    sql: sql.Composable
    params: list[Any] = field(default_factory=list)


# value kinds: "bool", "num", "str", "json", "array", "null", "time" (TIMESTAMPTZ fields, ISO
# literals, datetimes), "interval" (INTERVAL literals, timedeltas); literals keep their value
@dataclass
class _Expr:
    sql: sql.Composable
    params: list[Any]
    kind: str
    pos: int
    text: str
    value: Any = None            # python value when this is a literal
    is_literal: bool = False
    elem: FieldSchema | None = None  # element field of an ARRAY column
    numeric: bool = False        # a "num" whose SQL type is numeric (JSON values, arithmetic)
    # a "num" that is a whole number: True for integer fields, literals and their + - * %,
    # None where only the row can tell (JSON values, powers), False otherwise (floats, /)
    integral: bool | None = False
    key_path: bool = False       # a JSON value at a key path (what ``exists`` tests)
    # a "time" whose SQL is a timestamp without time zone in UTC (time ± interval, computed
    # on the UTC calendar whatever the session's TimeZone) rather than a timestamptz
    utc_naive: bool = False
    days: float = 0.0            # an interval's size in days (bounded: _MAX_INTERVAL_DAYS)


_PG_ELEM = {DataType.BOOL: "boolean", DataType.INT8: "smallint", DataType.INT16: "smallint",
            DataType.INT32: "integer", DataType.INT64: "bigint", DataType.FLOAT: "real",
            DataType.DOUBLE: "double precision", DataType.VARCHAR: "text"}


def _kind_of(dt: DataType) -> str:
    if dt is DataType.BOOL:
        return "bool"
    if dt.is_number:
        return "num"
    if dt is DataType.VARCHAR:
        return "str"
    if dt is DataType.JSON:
        return "json"
    if dt is DataType.ARRAY:
        return "array"
    if dt is DataType.TIMESTAMPTZ:
        return "time"
    return "vector"


def compile_filter(expression: str, schema: CollectionSchema, *,
                   qualifier: str | None = None,
                   params: Mapping[str, Any] | None = None,
                   timezone: str | None = None) -> Fragment:
    """Compile a Milvus filter expression for a table of ``schema``.

    ``qualifier`` prefixes columns with a table alias. ``params`` gives the values of the
    expression's ``{name}`` placeholders (Milvus' ``filter_params``), e.g.
    ``compile_filter("age > {low} and id in {ids}", schema, params={"low": 20, "ids": [1, 2]})``;
    they are bound as parameters like literals. ``timezone`` (an IANA name, default UTC:
    Milvus' collection or query ``timezone``) places ISO times written without an offset.
    Raises :class:`FilterError` with the position and text of the offending token.
    """
    time_zone(timezone)  # an unknown zone is the caller's error, raised before parsing
    if params is not None and not isinstance(params, Mapping):
        raise FilterError(f"filter params must be a dict, got {type(params).__name__}")
    if expression is None or not str(expression).strip():
        return Fragment(sql.SQL("TRUE"), [])
    if not isinstance(expression, str):
        raise FilterError(f"a filter must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise FilterError(f"filter longer than {MAX_LENGTH} characters")
    bad = _first_bad_char(expression)
    if bad is not None:
        # neither Postgres (text has no NUL) nor UTF-8 (no lone surrogates) can carry it;
        # the message shows the expression with U+FFFD there so it can still be printed
        shown = "".join("\ufffd" if _is_bad_char(ch) else ch for ch in expression)
        raise FilterError(f"invalid character {expression[bad]!r} (NUL or lone surrogate)",
                          expression=shown, position=bad, token=ascii(expression[bad]))
    try:
        tree = _parser.parse(expression)
    except UnexpectedCharacters as e:
        pos = e.pos_in_stream or 0
        raise FilterError("unexpected character", expression=expression, position=pos,
                          token=expression[pos:pos + 1]) from None
    except UnexpectedEOF:
        raise FilterError("unexpected end of expression", expression=expression,
                          position=len(expression), token="") from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            raise FilterError("unexpected end of expression", expression=expression,
                              position=len(expression), token="") from None
        raise FilterError(f"unexpected {tok.type.lower()} {str(tok)!r}", expression=expression,
                          position=tok.start_pos, token=str(tok)) from None
    except UnexpectedInput as e:  # pragma: no cover - the above cover LALR errors
        raise FilterError("cannot parse filter", expression=expression,
                          position=getattr(e, "pos_in_stream", None)) from None
    c = _Compiler(expression, schema, qualifier, params or {}, timezone)
    try:
        out = c.compile(tree, 0)
    except RecursionError:
        raise FilterError("filter nests too deeply", expression=expression) from None
    if out.kind == "json":
        out = c.json_as(out, "bool")
    if out.kind not in ("bool", "null"):
        raise FilterError("a filter must be a condition, not a value", expression=expression,
                          position=out.pos, token=out.text)
    return Fragment(_flatten(out.sql), out.params)


def _is_bad_char(ch: str) -> bool:
    return ch == "\x00" or "\ud800" <= ch <= "\udfff"


def _first_bad_char(text: str) -> int | None:
    """Index of the first NUL or lone surrogate, found at C speed in the common case."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        first: int | None = e.start
    else:
        first = None
    nul = text.find("\x00")
    if nul >= 0 and (first is None or nul < first):
        first = nul
    return first


def _flatten(q: sql.Composable) -> sql.Composed:
    """One flat ``Composed``: psycopg renders nested ones recursively, and a filter of a
    few hundred nodes would otherwise hit Python's recursion limit at execute time."""
    flat: list[sql.Composable] = []
    stack: list[sql.Composable] = [q]
    while stack:
        item = stack.pop()
        if isinstance(item, sql.Composed):
            stack.extend(reversed(list(item)))
        else:
            flat.append(item)
    return sql.Composed(flat)


def _tokens(n: Tree) -> list[Token]:
    """The children of a rule whose children are all tokens (paths, literals, like)."""
    return [c for c in n.children if isinstance(c, Token)]


def _index(tok: Token, limit: int) -> int | None:
    """An array/JSON index token; None (NULL in SQL: no element, no match) past ``limit``."""
    text = str(tok)
    return int(text) if len(text) <= 10 and int(text) <= limit else None


def _guard(x: sql.Composable, limit: str = _NUM_LIMIT) -> sql.Composable:
    """``x`` (numeric), or NULL where it is beyond ±``limit``, NaN or infinite.

    Clamping and then NULLIF-ing the bounds evaluates ``x`` once (a CASE would repeat it,
    doubling the SQL at every nesting level)."""
    return sql.SQL("NULLIF(NULLIF(LEAST(GREATEST({}, -{m}), {m}), {m}), -{m})").format(
        x, m=sql.SQL(limit))


def _balanced(items: list[sql.Composable], op: str, guard_each: bool = False) -> sql.Composable:
    """``a op b op c ...`` as a balanced tree (depth log n: Postgres' parser gives up near
    a thousand nested calls). With ``guard_each`` every partial result passes
    :func:`_guard` with a bound far above the double range, so a long product never
    overflows numeric; exact arithmetic makes the grouping invisible otherwise."""
    level = list(items)
    while len(level) > 1:
        nxt: list[sql.Composable] = []
        for i in range(0, len(level) - 1, 2):
            s: sql.Composable = sql.SQL("({} {} {})").format(level[i], sql.SQL(op), level[i + 1])
            nxt.append(_guard(s, _PARTIAL_LIMIT) if guard_each else s)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


_STRINGS = ("STRING", "RAW_STRING")


def _integral(parts: list[_Expr]) -> bool | None:
    """Whether the result of ``+ - * %`` on ``parts`` is a whole number: False if any part
    is not, None if a part can only tell per row (a JSON value), else True."""
    flags = [e.integral if not e.is_literal else isinstance(e.value, int) for e in parts]
    if False in flags:
        return False
    return None if None in flags else True


def _int64_guard(x: sql.Composable) -> sql.Composable:
    """A numeric ``x`` as bigint, or NULL where it is beyond int64 (one evaluation of ``x``,
    and a cast that cannot fail)."""
    return sql.SQL("(NULLIF(NULLIF(LEAST(GREATEST({}, {lo}), {hi}), {hi}), {lo}))::bigint").format(
        x, lo=sql.SQL(str(_INT64_MIN - 1)), hi=sql.SQL(str(_INT64_MAX + 1)))


def _elem_fits(dtype: DataType, v: Any) -> bool:
    """Whether ``v`` casts to the Postgres element type of an ARRAY of ``dtype``."""
    if dtype in _INT_RANGE:
        return -_INT_RANGE[dtype] <= v < _INT_RANGE[dtype]
    if dtype is DataType.FLOAT:  # real: float8 -> float4 fails on overflow and underflow
        return v == 0 or 1.5e-45 <= abs(v) <= _REAL_MAX
    if dtype is DataType.DOUBLE:
        return abs(v) <= 1.7976931348623157e308
    return True


class _Compiler:
    def __init__(self, expression: str, schema: CollectionSchema, qualifier: str | None,
                 params: Mapping[str, Any], timezone: str | None = None) -> None:
        self.expr = expression
        self.schema = schema
        self.qualifier = qualifier
        self.params = params
        self.timezone = timezone

    # -- helpers ------------------------------------------------------------------------
    def fail(self, msg: str, node: Any) -> FilterError:
        """A :class:`FilterError` pointing at ``node``'s position and text, for the caller to
        raise (``raise self.fail(...)``, so control flow stays visible)."""
        pos, text = self._where(node)
        return FilterError(msg, expression=self.expr, position=pos, token=text)

    def _where(self, node: Any) -> tuple[int | None, str | None]:
        if isinstance(node, _Expr):
            return node.pos, node.text
        if isinstance(node, Token):
            return node.start_pos, str(node)
        if isinstance(node, Tree) and not node.meta.empty:
            return node.meta.start_pos, self.expr[node.meta.start_pos:node.meta.end_pos]
        return None, None

    def _col(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.qualifier, name) if self.qualifier else sql.Identifier(name)

    def _mk(self, node: Any, s: sql.Composable, params: list[Any], kind: str, **kw: Any) -> _Expr:
        pos, text = self._where(node)
        return _Expr(s, params, kind, pos or 0, text or "", **kw)

    def json_as(self, e: _Expr, kind: str) -> _Expr:
        """A JSON value as a typed SQL value: NULL where its JSON type differs."""
        jtype, cast = {"num": ("number", "numeric"), "str": ("string", "text"),
                       "bool": ("boolean", "boolean")}[kind]
        if kind == "str":
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'string' THEN {0} #>> '{{}}' END)"
                        ).format(e.sql)
        else:
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = {1} THEN ({0})::{2} END)").format(
                e.sql, sql.Literal(jtype), sql.SQL(cast))
        return _Expr(s, e.params * 2, kind, e.pos, e.text, numeric=kind == "num",
                     integral=None if kind == "num" else False)

    def _literal_sql(self, e: _Expr, kind: str, numeric: bool = False) -> _Expr:
        """Bind a literal with an explicit type for comparison with a ``kind`` value.

        ``numeric`` binds numbers as numeric, for a numeric other side: comparing it with a
        double would cast it to double, which fails on JSON numbers beyond the double range.
        """
        v = e.value
        if kind == "num" and numeric:
            v = Decimal(repr(v)) if isinstance(v, float) else v
            return _Expr(sql.SQL("%s::numeric"), [v], kind, e.pos, e.text, value=e.value,
                         is_literal=True, numeric=True, integral=isinstance(v, int))
        if kind == "num":
            if isinstance(v, int) and -2**63 <= v < 2**63:
                cast = "bigint"
            elif isinstance(v, int):
                cast = "numeric"
            else:
                cast = "double precision"
        else:
            cast = {"str": "text", "bool": "boolean"}[kind]
        return _Expr(sql.SQL("%s::{}").format(sql.SQL(cast)), [v], kind, e.pos, e.text,
                     value=v, is_literal=True)

    def _coerce_pair(self, a: _Expr, b: _Expr, op: Any) -> tuple[_Expr, _Expr]:
        """Bring two operands to one comparable kind, or raise."""
        if "time" in (a.kind, b.kind):
            return self._time_pair(a, b)
        if a.kind == "json" and b.kind == "json":
            return a, b
        if a.kind == "json":
            a = self.json_as(a, self._target(b, op))
        if b.kind == "json":
            b = self.json_as(b, self._target(a, op))
        if a.kind != b.kind or a.kind in ("array", "vector", "null", "interval"):
            bad = b if b.is_literal or a.kind in ("num", "str", "bool") else a
            raise self.fail(f"cannot compare {a.kind} {a.text!r} with {b.kind} {b.text!r}", bad)
        if a.numeric != b.numeric and a.kind == "num":
            # numeric on one side: compare in numeric, exactly and without a cast error
            a, b = self._as_numeric(a), self._as_numeric(b)
        if a.is_literal and not b.is_literal:
            a = self._literal_sql(a, b.kind, b.numeric)
        if b.is_literal:
            b = self._literal_sql(b, a.kind, a.numeric)
        if a.is_literal and b.is_literal:
            a = self._literal_sql(a, a.kind)
        return a, b

    # -- TIMESTAMPTZ ----------------------------------------------------------------------
    def _time_value(self, v: Any, where: Any) -> _dt.datetime:
        """A literal as an aware datetime: ISO strings are read in the filter's timezone."""
        try:
            return parse_timestamp(v, self.timezone)
        except InvalidArgument as e:
            raise self.fail(str(e), where) from None

    def _time_pair(self, a: _Expr, b: _Expr) -> tuple[_Expr, _Expr]:
        """Two times to compare: a TIMESTAMPTZ field (or ``field ± INTERVAL``) and an ISO
        literal, a datetime template or a string (read as an ISO time). A plain field with
        a literal stays ``col < %s::timestamptz``, so a btree index serves it; beside
        ``field ± INTERVAL`` (a UTC timestamp) every side is a UTC timestamp."""
        for e, other in ((a, b), (b, a)):
            if e.kind == "time" or (e.kind == "str" and e.is_literal):
                continue
            raise self.fail(f"cannot compare {e.kind} {e.text!r} with a time "
                            f"{other.text!r}", e)
        naive = a.utc_naive or b.utc_naive
        out = []
        for e in (a, b):
            if e.is_literal:
                t = self._time_value(e.value, e)
                if naive:
                    v: Any = t.astimezone(UTC).replace(tzinfo=None)
                    e = _Expr(sql.SQL("%s::timestamp"), [v], "time", e.pos, e.text, value=t,
                              is_literal=True, utc_naive=True)
                else:
                    e = _Expr(sql.SQL("%s::timestamptz"), [t], "time", e.pos, e.text, value=t,
                              is_literal=True)
            elif naive and not e.utc_naive:
                e = _Expr(sql.SQL("({} AT TIME ZONE 'UTC')").format(e.sql), e.params, "time",
                          e.pos, e.text, utc_naive=True)
            out.append(e)
        return out[0], out[1]

    def _interval_value(self, v: Any, where: Any) -> tuple[Any, float]:
        """An interval literal's parameter (Postgres takes ISO 8601 durations as interval
        input; a timedelta binds as one) and its size in days."""
        if isinstance(v, _dt.timedelta):
            return v, abs(v.total_seconds()) / 86400
        if not isinstance(v, str):
            raise self.fail(f"INTERVAL takes an ISO 8601 duration such as \"P1DT2H\" or a "
                            f"timedelta, got {type(v).__name__}", where)
        m = _DURATION_RE.match(v.strip())
        if m is None:
            raise self.fail(f"{v!r} is not an ISO 8601 duration such as \"P1Y2M3DT4H5M6S\" "
                            "(whole numbers of each unit)", where)
        parts = [int(g) if g and len(g) <= 12 else (10**12 if g else 0) for g in m.groups()]
        y, mo, w, d, h, mi, sec = parts
        days = y * 366 + mo * 31 + w * 7 + d + (h * 3600 + mi * 60 + sec) / 86400
        text = f"P{y}Y{mo}M{w * 7 + d}DT{h}H{mi}M{sec}S"
        return text, days

    def _time_arith(self, n: Tree, parts: list[tuple[str, _Expr]]) -> _Expr:
        """``ts + INTERVAL "P1D" - INTERVAL "PT2H"``: calendar arithmetic on the UTC clock
        (months and days as Postgres adds them to a timestamp: 2025-01-31 + P1M is
        2025-02-28), a UTC timestamp for :meth:`_time_pair`."""
        (op0, base), rest = parts[0], parts[1:]
        if base.kind != "time" or op0 != "+" or not rest or any(
                e.kind != "interval" for _, e in rest):
            bad = next((e for _, e in parts if e.kind not in ("time", "interval")), base)
            raise self.fail("time arithmetic is a TIMESTAMPTZ plus or minus intervals: "
                            "ts + INTERVAL \"P1D\" - INTERVAL \"PT2H\"", bad)
        if base.is_literal:
            t = self._time_value(base.value, base)
            s: sql.Composable = sql.SQL("%s::timestamp")
            params: list[Any] = [t.astimezone(UTC).replace(tzinfo=None)]
        elif base.utc_naive:
            s, params = base.sql, list(base.params)
        else:
            s, params = sql.SQL("({} AT TIME ZONE 'UTC')").format(base.sql), list(base.params)
        if sum(e.days for _, e in rest) > _MAX_INTERVAL_DAYS:
            raise self.fail("intervals add up to more than 4000 years", rest[0][1])
        for op, e in rest:
            s = sql.SQL("({} {} {})").format(s, sql.SQL(op), e.sql)
            params += e.params
        return self._mk(n, s, params, "time", utc_naive=True)

    def t_iso(self, n: Tree, d: int) -> _Expr:
        """``ISO "2025-01-01T00:00:00Z"`` (or ``ISO {t}``): a time, bound as a parameter; one
        without an offset is in the filter's timezone (Milvus' rule)."""
        arg = n.children[1]
        if isinstance(arg, Token):
            v: Any = self._string(arg)
        else:
            v = self.compile(arg, d).value
        t = self._time_value(v, arg)
        return self._mk(n, sql.SQL("%s::timestamptz"), [t], "time", value=t, is_literal=True)

    def t_interval(self, n: Tree, d: int) -> _Expr:
        """``INTERVAL "P1DT2H"`` (or ``INTERVAL {d}`` with a duration string or timedelta):
        an ISO 8601 duration, bound as a parameter, to add to or subtract from a time."""
        arg = n.children[1]
        raw = self._string(arg) if isinstance(arg, Token) else self.compile(arg, d).value
        v, days = self._interval_value(raw, arg)
        if days > _MAX_INTERVAL_DAYS:
            raise self.fail("an interval of more than 4000 years", arg)
        return self._mk(n, sql.SQL("%s::interval"), [v], "interval", days=days)

    def _as_numeric(self, e: _Expr) -> _Expr:
        """A number as SQL numeric (literals are bound as numeric later, when compared)."""
        if e.numeric or e.is_literal:
            return e
        return _Expr(sql.SQL("({})::numeric").format(e.sql), e.params, "num", e.pos, e.text,
                     numeric=True, integral=e.integral)

    def _target(self, other: _Expr, op: Any) -> str:
        if other.kind in ("num", "str", "bool"):
            return other.kind
        raise self.fail(f"cannot compare a JSON value with {other.kind} {other.text!r}", other)

    # -- tree walk ------------------------------------------------------------------------
    def compile(self, node: Any, depth: int) -> _Expr:
        """Compile one parse-tree node by its rule's ``t_<rule>`` method; ``depth`` bounds the
        recursion so a deeply nested filter fails with a FilterError, not a RecursionError."""
        if depth > MAX_DEPTH:
            raise self.fail("filter nests too deeply", node)
        if isinstance(node, Token):
            raise self.fail(f"unexpected {node!s}", node)
        meth = getattr(self, "t_" + node.data.rstrip("_"), None)
        if meth is None:  # pragma: no cover - every grammar rule has a method
            raise self.fail(f"unsupported construct {node.data}", node)
        return meth(node, depth + 1)

    def _bool(self, e: _Expr) -> _Expr:
        if e.kind == "json":
            return self.json_as(e, "bool")
        if e.is_literal and isinstance(e.value, bool):
            return self._literal_sql(e, "bool")
        if e.kind not in ("bool", "null"):
            raise self.fail(f"expected a condition, got {e.kind} {e.text!r}", e)
        return e

    def _chain(self, n: Tree) -> list[Any]:
        """The operands of a chain of one associative rule (``a or b or (c or d)``), in
        order: a long flat chain is one SQL list, not a deep tree."""
        out: list[Any] = []
        stack: list[Any] = [n]
        while stack:
            node = stack.pop()
            if isinstance(node, Tree) and node.data == n.data:
                stack += [node.children[2], node.children[0]]
            else:
                out.append(node)
        return out

    def _junction(self, n: Tree, d: int, op: str) -> _Expr:
        parts = [self._bool(self.compile(c, d)) for c in self._chain(n)]
        params = [p for e in parts for p in e.params]
        s = sql.SQL("({})").format(sql.SQL(f" {op} ").join(e.sql for e in parts))
        return self._mk(n, s, params, "bool")

    def t_or(self, n: Tree, d: int) -> _Expr:
        """``a or b or ...``: one flat SQL OR of the whole chain."""
        return self._junction(n, d, "OR")

    def t_and(self, n: Tree, d: int) -> _Expr:
        """``a and b and ...``: one flat SQL AND of the whole chain."""
        return self._junction(n, d, "AND")

    def t_not(self, n: Tree, d: int) -> _Expr:
        """``not a`` (or ``!a``); a JSON value counts only where it holds a boolean."""
        a = self._bool(self.compile(n.children[1], d))
        return self._mk(n, sql.SQL("(NOT {})").format(a.sql), a.params, "bool")

    def t_literal(self, n: Tree, d: int) -> _Expr:
        """A number, string or boolean, bound as a parameter; its SQL type is chosen later, when
        the other side of a comparison is known."""
        tok = _tokens(n)[0]
        if tok.type in ("NUMBER", "PREFIXED_INT", "HEX_FLOAT"):
            v: Any = self._number(tok)
            return self._mk(n, sql.SQL("%s"), [v], "num", value=v, is_literal=True)
        if tok.type in _STRINGS:
            v = self._string(tok)
            return self._mk(n, sql.SQL("%s"), [v], "str", value=v, is_literal=True)
        v = tok.type == "TRUE"
        return self._mk(n, sql.SQL("%s"), [v], "bool", value=v, is_literal=True)

    def _number(self, tok: Token) -> int | float:
        """A number literal as Plan.g4 spells them: decimal, ``0x1F``, ``0b101``, octal with a
        leading zero (``017``, as in C and Milvus) or ``0o17``, and hex floats (``0x1.8p3``)."""
        text = str(tok)
        if len(text) > MAX_NUMBER_LENGTH:
            raise self.fail(f"number literal longer than {MAX_NUMBER_LENGTH} characters", tok)
        if tok.type == "PREFIXED_INT":
            return int(text, 0)
        if tok.type == "HEX_FLOAT":
            try:
                v = float.fromhex(text)
            except OverflowError:
                raise self.fail("number out of the double range", tok) from None
            return v
        if any(ch in text for ch in ".eE"):
            f = float(text)
            if math.isinf(f):
                raise self.fail("number out of the double range", tok)
            return f
        if len(text) > 1 and text[0] == "0":
            if any(ch in "89" for ch in text):
                raise self.fail("malformed octal literal (a leading 0 makes an integer octal,"
                                " as in Milvus)", tok)
            return int(text, 8)
        return int(text)

    def _string(self, tok: Token) -> str:
        text = str(tok)
        if tok.type == "RAW_STRING":  # r"..." / r'...': no escape processing at all
            v = text[2:-1]
            bad = _first_bad_char(v)
            if bad is not None:  # pragma: no cover - the whole expression was checked
                raise self.fail(f"string literal holds {v[bad]!r}", tok)
            return v
        try:
            v = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise self.fail("malformed string literal", tok) from None
        if not isinstance(v, str):
            raise self.fail("malformed string literal", tok)
        bad = _first_bad_char(v)
        if bad is not None:  # from an escape such as "\0" or "\ud800"
            raise self.fail(f"string literal holds {v[bad]!r}, which Postgres text cannot", tok)
        return v

    def t_template(self, n: Tree, d: int) -> _Expr:
        """``{name}``: the value of ``params["name"]``, a literal like any other (a list for
        ``in`` and the array functions) and bound as a parameter, never spliced into SQL."""
        tok = _tokens(n)[0]
        name = str(tok)
        if name not in self.params:
            known = ", ".join(sorted(map(str, self.params))) or "none given"
            raise self.fail(f"no value for placeholder {{{name}}} (params: {known})", n)
        v = self._param_value(self.params[name], n, name, 0)
        if isinstance(v, list):
            return self._mk(n, sql.SQL("%s"), [], "list", value=v, is_literal=True)
        if isinstance(v, _dt.timedelta):
            iv, days = self._interval_value(v, n)
            if days > _MAX_INTERVAL_DAYS:
                raise self.fail(f"placeholder {{{name}}}: an interval of more than 4000 years", n)
            return self._mk(n, sql.SQL("%s::interval"), [iv], "interval", days=days)
        kind = ("bool" if isinstance(v, bool) else "str" if isinstance(v, str) else
                "time" if isinstance(v, _dt.datetime) else "num")
        return self._mk(n, sql.SQL("%s"), [v], kind, value=v, is_literal=True)

    def _param_value(self, v: Any, n: Tree, name: str, depth: int) -> Any:
        """A placeholder's value as a literal's: bool, int, float, str or a list of them
        (tuples and numpy values too); anything else is a :class:`FilterError`."""
        if depth > MAX_PARAM_DEPTH:
            raise self.fail(f"placeholder {{{name}}}: lists nest too deeply", n)
        if isinstance(v, (_dt.datetime, np.datetime64)):  # a time for TIMESTAMPTZ fields
            return self._time_value(v, n)
        if isinstance(v, _dt.timedelta):
            return v
        if not isinstance(v, (str, bytes, list, tuple)) and callable(getattr(v, "tolist", None)):
            v = v.tolist()  # numpy scalars and arrays
        if isinstance(v, bool):
            return v
        if isinstance(v, numbers.Integral):
            v = int(v)
            if v.bit_length() > 3300:  # ~1000 digits, as for number literals
                raise self.fail(f"placeholder {{{name}}}: integer too large", n)
            return v
        if isinstance(v, numbers.Real):
            f = float(v)
            if not math.isfinite(f):
                raise self.fail(f"placeholder {{{name}}}: {f} is not a finite number", n)
            return f
        if isinstance(v, str):
            bad = _first_bad_char(v)
            if bad is not None:
                raise self.fail(f"placeholder {{{name}}} holds {v[bad]!r}, which Postgres text"
                                " cannot", n)
            return v
        if isinstance(v, (list, tuple)):
            return [self._param_value(x, n, name, depth + 1) for x in v]
        raise self.fail(f"placeholder {{{name}}} has a value of type {type(v).__name__}; expected"
                        " bool, int, float, str, datetime, timedelta or a list of them", n)

    def t_list(self, n: Tree, d: int) -> _Expr:
        """``[1, 2, 3]``: literals only, kept as values for ``in`` and the array functions."""
        items = [self.compile(c, d) for c in n.children]
        for it in items:
            if not it.is_literal:
                raise self.fail("list elements must be literals", it)
        return self._mk(n, sql.SQL("%s"), [], "list", value=[it.value for it in items],
                        is_literal=True)

    def t_path(self, n: Tree, d: int) -> _Expr:
        """A field, an array element (``tags[0]``, from 0 as in Milvus), a JSON path
        (``meta["a"][0]``) or a dynamic key (``$meta["k"]`` or a bare unknown name)."""
        head, *steps = _tokens(n)
        name = str(head)
        if head.type == "META" or (self.schema.get(name) is None and name != "$meta"):
            if head.type != "META" and not self.schema.enable_dynamic_field:
                raise self.fail(f"unknown field {name!r}", head)
            if head.type == "META":
                if not self.schema.enable_dynamic_field:
                    raise self.fail("$meta needs a collection with dynamic fields "
                                    "(enable_dynamic_field=True)", head)
                if not steps or steps[0].type not in _STRINGS:
                    raise self.fail('$meta needs a key: $meta["name"]', head)
                key, steps = self._string(steps[0]), steps[1:]
            else:
                key = name
            meta = sql.SQL("({} -> %s::text)").format(self._col(META_COLUMN))
            e = self._mk(n, meta, [key], "json")
            out = self._json_steps(e, steps, n)
            out.key_path = True
            return out
        f = self.schema.field(name)
        kind = _kind_of(f.dtype)
        if kind == "vector":
            raise self.fail(f"vector field {name!r} cannot be used in a filter", head)
        e = self._mk(n, self._col(name), [], kind, integral=f.dtype.is_integer)
        if kind == "json":
            return self._json_steps(e, steps, n)
        if kind == "array":
            assert f.element_type is not None
            e.elem = FieldSchema(f.name, f.element_type, max_length=f.max_length)
            if not steps:
                return e
            if len(steps) > 1 or steps[0].type != "INT":
                raise self.fail(f"array field {name!r} takes one integer index", steps[0])
            # Milvus indexes from 0, Postgres arrays from 1
            return self._mk(n, sql.SQL("{}[%s::int + 1]").format(self._col(name)),
                            [_index(steps[0], 2**31 - 2)], _kind_of(f.element_type),
                            integral=f.element_type.is_integer)
        if steps:
            raise self.fail(f"field {name!r} of type {f.dtype.value} cannot be indexed", steps[0])
        return e

    def _json_steps(self, e: _Expr, steps: list[Token], n: Tree) -> _Expr:
        s, params = e.sql, list(e.params)
        for st in steps:
            if st.type in _STRINGS:
                s, params = sql.SQL("({} -> %s::text)").format(s), params + [self._string(st)]
            else:  # not ``-> int``: on a JSON scalar that returns the scalar itself
                i = _index(st, 2**31 - 1)
                s = sql.SQL("({} #> %s::text[])").format(s)
                params = params + [None if i is None else [str(i)]]
        return self._mk(n, s, params, "json", key_path=bool(steps))

    def t_compare(self, n: Tree, d: int) -> _Expr:
        """A comparison or a two-sided range (``1 < age <= 5``) of one direction; the literal
        takes the column's type, so a btree index still serves ``n > 3``."""
        parts = n.children
        ops = [parts[i] for i in range(1, len(parts), 2)]
        if len(ops) > 2:
            raise self.fail("a range compares at most twice: 1 < age < 5", ops[2])
        if len(ops) == 2:
            up, down = ("<", "<="), (">", ">=")
            if not ((str(ops[0]) in up and str(ops[1]) in up)
                    or (str(ops[0]) in down and str(ops[1]) in down)):
                raise self.fail("a range takes two comparisons in the same direction: "
                                "1 < age <= 5 or 5 > age >= 1", ops[1])
        operands = [self.compile(parts[i], d) for i in range(0, len(parts), 2)]
        conds: list[sql.Composable] = []
        params: list[Any] = []
        lists = [e for e in operands if e.kind == "list"]
        if lists:
            if len(ops) > 1 or str(ops[0]) not in ("==", "!="):
                raise self.fail("a list can only be compared with == or !=", ops[-1])
            if len(lists) == 2:
                raise self.fail("comparing two lists: one side must be a field", operands[1])
            other = operands[1] if operands[0].kind == "list" else operands[0]
            eq = self._array_equal(other, lists[0], ops[0])
            return self._mk(n, eq.sql, eq.params, "bool")
        for i, op in enumerate(ops):
            a, b = self._coerce_pair(operands[i], operands[i + 1], op)
            # JSON vs JSON: only equality is well defined
            if a.kind == "json" and str(op) not in ("==", "!="):
                raise self.fail("JSON values can only be compared with == or !=", op)
            if a.kind == "bool" and str(op) not in ("==", "!="):
                raise self.fail("booleans can only be compared with == or !=", op)
            sqlop = {"==": "=", "!=": "<>"}.get(str(op), str(op))
            conds.append(sql.SQL("({} {} {})").format(a.sql, sql.SQL(sqlop), b.sql))
            params += a.params + b.params
        return self._mk(n, sql.SQL("({})").format(sql.SQL(" AND ").join(conds)), params, "bool")

    def _in(self, n: Tree, d: int, negate: bool) -> _Expr:
        a = self.compile(n.children[0], d)
        lst = self.compile(n.children[-1], d)
        if lst.kind != "list":
            raise self.fail(f"'in' needs a list on its right, got {lst.kind} {lst.text!r}", lst)
        values = lst.value
        if not values:
            return self._mk(n, sql.SQL("TRUE" if negate else "FALSE"), [], "bool")
        if a.kind == "json":
            return self._json_in(n, a, values, negate)
        if a.kind == "time":
            times = [self._time_value(v, lst) for v in values]
            if a.utc_naive:
                naive = [t.astimezone(UTC).replace(tzinfo=None) for t in times]
                s = sql.SQL("({} = ANY(%s::timestamp[]))").format(a.sql)
                out = self._mk(n, s, a.params + [naive], "bool")
            else:
                s = sql.SQL("({} = ANY(%s::timestamptz[]))").format(a.sql)
                out = self._mk(n, s, a.params + [times], "bool")
            if negate:
                out = self._mk(n, sql.SQL("(NOT {})").format(out.sql), out.params, "bool")
            return out
        if a.kind not in ("num", "str", "bool"):
            raise self.fail(f"'in' needs a scalar on its left, got {a.kind}", a)
        cast = self._list_cast(a.kind, values, lst)
        if a.numeric:
            cast = "numeric"
        if cast == "numeric":  # one element type per array: ints and floats as Decimal
            values = [Decimal(repr(v)) for v in values]
        s = sql.SQL("({} = ANY(%s::{}[]))").format(a.sql, sql.SQL(cast))
        out = self._mk(n, s, a.params + [list(values)], "bool")
        if negate:
            out = self._mk(n, sql.SQL("(NOT {})").format(out.sql), out.params, "bool")
        return out

    def _json_in(self, n: Tree, a: _Expr, values: list[Any], negate: bool) -> _Expr:
        """``in`` / ``not in`` on a JSON value as the OR / AND of ``==`` / ``!=``: a value of
        a type the list lacks makes those terms unknown, so neither form matches it."""
        groups: dict[str, list[Any]] = {"number": [], "string": [], "boolean": []}
        for v in values:
            if isinstance(v, bool):
                groups["boolean"].append(v)
            elif isinstance(v, (int, float)):
                groups["number"].append(Decimal(repr(v)))  # one element type per array
            elif isinstance(v, str):
                groups["string"].append(v)
            else:
                raise self.fail(f"list element {v!r} cannot be compared with a JSON value", a)
        value = {"number": "({})::numeric", "string": "({} #>> '{{}}')",
                 "boolean": "({})::boolean"}
        cast = {"number": "numeric", "string": "text", "boolean": "boolean"}
        whens: list[sql.Composable] = []
        params: list[Any] = list(a.params)
        for jtype, vals in groups.items():
            if not vals:
                continue  # no term of this type: ELSE NULL
            test = "<> ALL" if negate else "= ANY"
            cond = sql.SQL("{} {}(%s::{}[])").format(
                sql.SQL(value[jtype]).format(a.sql), sql.SQL(test), sql.SQL(cast[jtype]))
            if len(vals) < len(values):  # the other terms are unknown for this type
                cond = sql.SQL("({} {} NULL::boolean)").format(
                    cond, sql.SQL("AND" if negate else "OR"))
            whens.append(sql.SQL("WHEN {} THEN {}").format(sql.Literal(jtype), cond))
            params += a.params + [vals]
        s = sql.SQL("(CASE jsonb_typeof({}) {} END)").format(a.sql, sql.SQL(" ").join(whens))
        return self._mk(n, s, params, "bool")

    def _list_cast(self, kind: str, values: list[Any], where: _Expr) -> str:
        for v in values:
            ok = (isinstance(v, bool) if kind == "bool" else
                  isinstance(v, str) if kind == "str" else
                  isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok:
                raise self.fail(f"list element {v!r} does not match {kind}", where)
        if kind == "num":
            # bigint keeps a btree index on an integer column usable; numeric takes the rest
            ints = all(isinstance(v, int) and -2**63 <= v < 2**63 for v in values)
            return "bigint" if ints else "numeric"
        return {"str": "text", "bool": "boolean"}[kind]

    def t_in(self, n: Tree, d: int) -> _Expr:
        """``x in [...]``: ``= ANY(%s)`` with the list as one array parameter, however long."""
        return self._in(n, d, False)

    def t_not_in(self, n: Tree, d: int) -> _Expr:
        """``x not in [...]``: the negation of :meth:`t_in` (unknown on JSON of another type)."""
        return self._in(n, d, True)

    def t_like(self, n: Tree, d: int) -> _Expr:
        """``s like "abc%"`` with Postgres' LIKE; a trailing lone backslash is refused here, as
        Postgres would fail the whole query on it."""
        a = self.compile(n.children[0], d)
        if a.kind == "json":
            a = self.json_as(a, "str")
        if a.kind != "str":
            raise self.fail(f"'like' needs a string on its left, got {a.kind} {a.text!r}", a)
        tok: Any = n.children[-1]
        if isinstance(tok, Token):
            pattern = self._string(tok)
        else:  # a placeholder
            p = self.compile(tok, d)
            if p.kind != "str":
                raise self.fail(f"a like pattern must be a string, got {p.kind} {p.text!r}", p)
            pattern = p.value
        if (len(pattern) - len(pattern.rstrip("\\"))) % 2:
            raise self.fail("a like pattern cannot end with a lone backslash"
                            " (escape it: \\\\)", tok)
        return self._mk(n, sql.SQL("({} LIKE %s::text)").format(a.sql), a.params + [pattern],
                        "bool")

    def _null(self, n: Tree, d: int, negate: bool) -> _Expr:
        a = self.compile(n.children[0], d)
        if a.is_literal:
            raise self.fail("'is null' needs a field", a)
        if a.kind == "json":
            s = sql.SQL("({0} IS NULL OR jsonb_typeof({0}) = 'null')").format(a.sql)
            params = a.params * 2
        else:
            s, params = sql.SQL("({} IS NULL)").format(a.sql), a.params
        if negate:
            s = sql.SQL("(NOT {})").format(s)
        return self._mk(n, s, params, "bool")

    def t_is_null(self, n: Tree, d: int) -> _Expr:
        """``x is null``: on JSON, a missing key and a JSON ``null`` both count."""
        return self._null(n, d, False)

    def t_is_not_null(self, n: Tree, d: int) -> _Expr:
        """``x is not null``: the negation of :meth:`t_is_null`."""
        return self._null(n, d, True)

    def _num(self, e: _Expr) -> _Expr:
        """An arithmetic operand as SQL numeric: exact, and it cannot overflow on its own."""
        if e.kind == "json":
            # a JSON number can be up to 10**131071: bound it before it enters arithmetic
            j = self.json_as(e, "num")
            return _Expr(_guard(j.sql), j.params, "num", e.pos, e.text, numeric=True,
                         integral=None)
        if e.kind != "num":
            raise self.fail(f"arithmetic needs numbers, got {e.kind} {e.text!r}", e)
        if e.is_literal:
            return self._literal_sql(e, "num", numeric=True)
        return self._as_numeric(e)

    def _arith_chain(self, n: Tree) -> list[tuple[str, Any]]:
        """``a - b + c`` (one precedence level, left-associative) as [("+", a), ("-", b),
        ("+", c)], walking the left spine without recursion."""
        group = ("+", "-") if str(n.children[1]) in ("+", "-") else ("*", "/", "%")
        items: list[tuple[str, Any]] = []
        node: Any = n
        while isinstance(node, Tree) and node.data == "arith" and str(node.children[1]) in group:
            items.append((str(node.children[1]), node.children[2]))
            node = node.children[0]
        items.append((group[0], node))
        items.reverse()
        return items

    def t_arith(self, n: Tree, d: int) -> _Expr:
        """``+ - * / %`` on numeric: exact; division and modulo by zero, and results beyond the
        double range, are unknown for that row instead of an error for the query."""
        parts = [(op, self.compile(c, d)) for op, c in self._arith_chain(n)]
        if any(e.kind in ("time", "interval") for _, e in parts):
            return self._time_arith(n, parts)
        items = [(op, self._num(e)) for op, e in parts]
        params: list[Any] = []
        if items[0][0] in ("+", "-"):
            # numeric addition is exact, so a balanced tree is the same sum, and stays
            # shallow for Postgres' parser on sums of thousands of terms
            pos = [e for op, e in items if op == "+"]
            neg = [e for op, e in items if op == "-"]
            s = _balanced([e.sql for e in pos], "+")
            if neg:
                s = sql.SQL("({} - {})").format(s, _balanced([e.sql for e in neg], "+"))
            params = [p for e in pos + neg for p in e.params]
            return self._mk(n, _guard(s), params, "num", numeric=True,
                            integral=_integral([e for _, e in items]))
        if sum(op != "*" for op, _ in items) > MAX_DEPTH:  # each one nests in the SQL
            raise self.fail("filter nests too deeply (too many / and %)", n)
        acc, params = items[0][1].sql, list(items[0][1].params)
        run: list[sql.Composable] = []  # factors multiplied since the last / or %
        for op, e in items[1:]:
            if op == "*":
                run.append(e.sql)
            else:  # x / 0 and x % 0 are NULL, not an error
                acc = _balanced([acc, *run], "*", guard_each=True)
                run = []
                o = "%%" if op == "%" else op  # the statement goes out with parameters
                acc = _guard(sql.SQL("({} {} NULLIF({}, 0))").format(acc, sql.SQL(o), e.sql),
                             _PARTIAL_LIMIT)
            params += e.params
        acc = _guard(_balanced([acc, *run], "*", guard_each=True))
        # true division is not an integer operation, even where it happens to give one
        whole = False if any(op == "/" for op, _ in items) else _integral([e for _, e in items])
        return self._mk(n, acc, params, "num", numeric=True, integral=whole)

    def t_pow(self, n: Tree, d: int) -> _Expr:
        """``a ** b``: unknown for that row where undefined or out of range, never an error."""
        x, y = self._num(self.compile(n.children[0], d)), self._num(self.compile(n.children[2], d))
        # undefined (0 ** -1, (-8) ** 0.5) or out-of-range results are NULL for that row;
        # the subquery names base and exponent once instead of repeating their SQL
        s = sql.SQL(
            "(SELECT CASE WHEN b = 0 AND e < 0 THEN NULL"
            " WHEN b < 0 AND e <> trunc(e) THEN NULL"
            " WHEN b = 0 OR abs(b) = 1 THEN power(b, e)"
            " WHEN e * log(abs(b)) > 308 THEN NULL"
            " WHEN e * log(abs(b)) < -400 THEN 0::numeric"
            " ELSE power(b, e) END FROM (VALUES ({}, {})) AS vecpg_pow(b, e))").format(x.sql, y.sql)
        # whole for whole bases and non-negative whole exponents; a row tells otherwise
        whole: bool | None = None
        if x.integral is False or y.integral is False:
            whole = False
        elif x.integral and y.is_literal and isinstance(y.value, int) and y.value >= 0:
            whole = True
        return self._mk(n, s, x.params + y.params, "num", numeric=True, integral=whole)

    def t_neg(self, n: Tree, d: int) -> _Expr:
        """Unary minus; folded into a literal, else computed on numeric so -(-2**63) fits."""
        inner = self.compile(n.children[1], d)
        if inner.is_literal and inner.kind == "num":
            v = -inner.value
            return self._mk(n, sql.SQL("%s"), [v], "num", value=v, is_literal=True)
        x = self._num(inner)  # numeric: -(-2**63) fits
        return self._mk(n, sql.SQL("(- {})").format(x.sql), x.params, "num", numeric=True,
                        integral=x.integral)

    # -- bitwise and shift operators: int64, as Milvus' integers -----------------------------
    def _int64(self, e: _Expr, op: Any) -> _Expr:
        """A bitwise or shift operand as bigint: integer fields and literals as they are; JSON
        values and arithmetic results where the row's value is a whole number within int64,
        else NULL (unknown) for that row. Any other operand is a :class:`FilterError`."""
        if e.kind == "json":
            e = self._num(e)
        if e.kind != "num":
            hint = ""
            if e.kind == "bool":
                hint = (f"; {op!s} binds looser than comparisons, as in Milvus' grammar:"
                        f" write (x {op!s} 1) == 1")
            raise self.fail(f"{op!s} needs integers, got {e.kind} {e.text!r}{hint}", e)
        if e.is_literal:
            v = e.value
            if not isinstance(v, int):
                raise self.fail(f"{op!s} needs integers, got {v!r}", e)
            if not _INT64_MIN <= v <= _INT64_MAX:
                raise self.fail(f"{op!s} works on int64; {v} is out of its range", e)
            return _Expr(sql.SQL("%s::bigint"), [v], "num", e.pos, e.text, integral=True)
        if e.integral is False:
            why = " ('/' is true division)" if "/" in e.text else ""
            raise self.fail(f"{op!s} needs integers, got {e.text!r}, which is not an"
                            f" integer{why}", e)
        if not e.numeric:  # an integer field or element, a bitwise result, array_length
            return _Expr(sql.SQL("({})::bigint").format(e.sql), e.params, "num", e.pos, e.text,
                         integral=True)
        if e.integral:  # whole already: only the range is left to check
            return _Expr(_int64_guard(e.sql), e.params, "num", e.pos, e.text, integral=True)
        s = sql.SQL("(SELECT CASE WHEN v = trunc(v) THEN {} END FROM (VALUES ({})) AS vecpg_int(v))"
                    ).format(_int64_guard(sql.SQL("v")), e.sql)
        return _Expr(s, e.params, "num", e.pos, e.text, integral=True)

    def _bitwise(self, n: Tree, d: int, sqlop: str) -> _Expr:
        ops = [c for c in n.children if isinstance(c, Token)]
        parts = [self.compile(c, d) for c in self._chain(n)]
        ints = [self._int64(e, ops[0]) for e in parts]
        s = _balanced([e.sql for e in ints], sqlop)
        return self._mk(n, s, [p for e in ints for p in e.params], "num", integral=True)

    def t_bitand(self, n: Tree, d: int) -> _Expr:
        """``a & b`` on int64 (two's complement, as Python's ints within that range)."""
        return self._bitwise(n, d, "&")

    def t_bitor(self, n: Tree, d: int) -> _Expr:
        """``a | b`` on int64."""
        return self._bitwise(n, d, "|")

    def t_bitxor(self, n: Tree, d: int) -> _Expr:
        """``a ^ b`` on int64 (Postgres spells it ``#``)."""
        return self._bitwise(n, d, "#")

    def t_bnot(self, n: Tree, d: int) -> _Expr:
        """``~a`` on int64: ``-a - 1``; folded into a literal."""
        op, node = n.children
        inner = self.compile(node, d)
        x = self._int64(inner, op)
        if inner.is_literal:
            v = ~inner.value
            return self._mk(n, sql.SQL("%s"), [v], "num", value=v, is_literal=True)
        return self._mk(n, sql.SQL("(~ {})").format(x.sql), x.params, "num", integral=True)

    def t_shift(self, n: Tree, d: int) -> _Expr:
        """``a << b`` and ``a >> b`` on int64, exact: ``a * 2**b`` and ``floor(a / 2**b)``.
        A result beyond int64 or a negative count is unknown for that row (a negative
        literal count is an error), never a wrapped-around value."""
        left, op, right = n.children
        count = self.compile(right, d)
        a, b = self._int64(self.compile(left, d), op), self._int64(count, op)
        if count.is_literal and count.value < 0:
            raise self.fail(f"negative shift count {count.value}", count)
        if str(op) == "<<":
            # 2**64 moves any non-zero int64 out of range: a larger count changes nothing
            body = _int64_guard(sql.SQL("x::numeric * power(2::numeric, LEAST(c, 64))"))
        else:  # past 63 every bit is the sign; the count is clamped so its cast cannot fail
            body = sql.SQL("(x >> LEAST(c, 63)::int)")
        s = sql.SQL("(SELECT CASE WHEN c >= 0 THEN {} END FROM (VALUES ({}, {})) AS"
                    " vecpg_shift(x, c))").format(body, a.sql, b.sql)
        return self._mk(n, s, a.params + b.params, "num", integral=True)

    def t_exists(self, n: Tree, d: int) -> _Expr:
        """``exists meta["a"]["b"]``: the key path is present, even where its value is JSON
        null (``is not null`` is false there); never unknown."""
        e = self.compile(n.children[1], d)
        if not e.key_path:
            raise self.fail(f"'exists' needs a JSON key path such as meta[\"key\"] or a dynamic"
                            f" field, got {e.text!r}", e)
        return self._mk(n, sql.SQL("({} IS NOT NULL)").format(e.sql), e.params, "bool")

    def _array_equal(self, field_side: _Expr, lst: _Expr, op: Any) -> _Expr:
        """``tags == [1, 2]`` / ``meta["a"] != ["x"]``: whole-array (in)equality, element by
        element in order. On JSON, a value that is no array makes both unknown."""
        neg = str(op) == "!="
        values: list[Any] = lst.value
        if field_side.kind == "json":
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'array' THEN {0} {1} %s::jsonb END)"
                        ).format(field_side.sql, sql.SQL("<>" if neg else "="))
            return _Expr(s, field_side.params * 2 + [Jsonb(values)], "bool", 0, "")
        if field_side.kind != "array" or field_side.elem is None:
            raise self.fail(f"a list compares only with an ARRAY or JSON field, got"
                            f" {field_side.kind} {field_side.text!r}", field_side)
        dtype = field_side.elem.dtype
        kind = _kind_of(dtype)
        self._list_cast(kind, values, lst)
        if dtype.is_integer and any(isinstance(v, float) for v in values):
            raise self.fail(f"{field_side.text!r} holds integers; got {lst.text}", lst)
        if not all(_elem_fits(dtype, v) for v in values):  # no stored array can equal it
            s = sql.SQL("(CASE WHEN {} IS NOT NULL THEN {} END)").format(
                field_side.sql, sql.SQL("TRUE" if neg else "FALSE"))
            return _Expr(s, list(field_side.params), "bool", 0, "")
        if kind == "num" and not dtype.is_integer:
            values = [float(v) for v in values]
        elem = "varchar" if dtype is DataType.VARCHAR else _PG_ELEM[dtype]
        s = sql.SQL("({} {} %s::{}[])").format(field_side.sql, sql.SQL("<>" if neg else "="),
                                                sql.SQL(elem))
        return _Expr(s, field_side.params + [list(values)], "bool", 0, "")

    def t_call(self, n: Tree, d: int) -> _Expr:
        """``array_contains*``, ``array_length`` and ``json_contains*`` (Milvus' functions, each
        on ARRAY and JSON fields), as Postgres array and jsonb operators on the column's own
        element type."""
        name_tok, *args_nodes = n.children
        fname = str(name_tok).lower()
        if fname in ("text_match", "phrase_match"):
            return self._text_match(n, d, fname, name_tok, args_nodes)
        args = [self.compile(a, d) for a in args_nodes]
        want = {"array_contains": 2, "array_contains_all": 2, "array_contains_any": 2,
                "array_length": 1, "json_contains": 2, "json_contains_all": 2,
                "json_contains_any": 2}
        if fname not in want:
            raise self.fail(f"unknown function {str(name_tok)!r}", name_tok)
        if len(args) != want[fname]:
            raise self.fail(f"{fname} takes {want[fname]} argument(s), got {len(args)}", name_tok)
        target = args[0]
        if target.kind not in ("array", "json") or target.is_literal:
            raise self.fail(f"{fname} needs an ARRAY or JSON field, got {target.text!r}", target)
        if fname == "array_length":
            if target.kind == "array":
                return self._mk(n, sql.SQL("cardinality({})").format(target.sql), target.params,
                                "num", integral=True)
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'array' THEN jsonb_array_length({0}) END)"
                        ).format(target.sql)
            return self._mk(n, s, target.params * 2, "num", integral=True)
        arg = args[1]
        if not arg.is_literal:
            raise self.fail(f"{fname} takes a literal as its second argument", arg)
        mode = "all" if fname.endswith("_all") else "any" if fname.endswith("_any") else "one"
        values = [arg.value] if mode == "one" else arg.value
        if mode != "one" and arg.kind != "list":
            raise self.fail(f"{fname} takes a list as its second argument", arg)
        if target.kind == "array":
            assert target.elem is not None
            kind = _kind_of(target.elem.dtype)
            self._list_cast(kind, values, arg)
            if target.elem.dtype.is_integer and any(isinstance(v, float) for v in values):
                raise self.fail(f"{target.text!r} holds integers; got {arg.text}", arg)
            # a value the element type cannot hold is in no array (and would fail the cast)
            fits = [_elem_fits(target.elem.dtype, v) for v in values]
            if mode == "any":
                values = [v for v, ok in zip(values, fits) if ok]
            if (mode == "any" and not values) or (mode != "any" and not all(fits)):
                s = sql.SQL("(CASE WHEN {} IS NOT NULL THEN FALSE END)").format(target.sql)
                return self._mk(n, s, list(target.params), "bool")
            if kind == "num" and not target.elem.dtype.is_integer:
                values = [float(v) for v in values]  # one element type per array
            op = "&&" if mode == "any" else "@>"
            # the column's own element type: varchar[] has no @> / && with text[]
            dtype = target.elem.dtype
            elem = "varchar" if dtype is DataType.VARCHAR else _PG_ELEM[dtype]
            s = sql.SQL("({} {} %s::{}[])").format(target.sql, sql.SQL(op), sql.SQL(elem))
            return self._mk(n, s, target.params + [list(values)], "bool")
        if mode == "any":
            s = sql.SQL("(jsonb_typeof({0}) = 'array' AND EXISTS (SELECT 1 FROM "
                        "jsonb_array_elements({0}) AS e(v) WHERE e.v = ANY(%s::jsonb[])))"
                        ).format(target.sql)
            return self._mk(n, s, target.params * 2 + [[Jsonb(v) for v in values]], "bool")
        s = sql.SQL("(jsonb_typeof({0}) = 'array' AND {0} @> %s::jsonb)").format(target.sql)
        return self._mk(n, s, target.params * 2 + [Jsonb(list(values))], "bool")

    def _text_match(self, n: Tree, d: int, fname: str, name_tok: Any,
                    args_nodes: list[Any]) -> _Expr:
        """``text_match(field, "words")``: rows holding any of the words' terms (after the
        field's analyzer); ``phrase_match(field, "a phrase", slop=0)``: the phrase's terms in
        order, at most ``slop`` position moves apart (Lucene's sloppy phrase, as Milvus:
        slop 1 allows one word in between, slop 2 also the two words swapped). Both on the
        field's generated tsvector column, through its GIN index."""
        want = (2, 2) if fname == "text_match" else (2, 3)
        if not want[0] <= len(args_nodes) <= want[1]:
            raise self.fail(f"{fname} takes {'2' if want[1] == 2 else '2 or 3'} arguments, "
                            f"got {len(args_nodes)}", name_tok)
        head = args_nodes[0]
        toks = _tokens(head) if isinstance(head, Tree) and head.data == "path" else []
        if len(toks) != 1 or toks[0].type != "NAME" or self.schema.get(str(toks[0])) is None:
            raise self.fail(f"{fname} needs a VARCHAR field as its first argument", name_tok)
        f = self.schema.field(str(toks[0]))
        if not f.enable_match or f.text_config is None:
            raise self.fail(f"{fname} needs a field with enable_analyzer=True and "
                            f"enable_match=True; {f.name!r} has not", toks[0])
        text = self.compile(args_nodes[1], d)
        if not text.is_literal or not isinstance(text.value, str):
            raise self.fail(f"{fname} takes a string as its second argument", text)
        tsv = self._col(tsv_column(f.name))
        cfg = f.text_config
        if fname == "text_match":
            s = sql.SQL("({} @@ vecpg.text_match_query(%s::regconfig, %s::text))").format(tsv)
            return self._mk(n, s, [cfg, text.value], "bool")
        slop: Any = 0
        if len(args_nodes) == 3:
            e = self.compile(args_nodes[2], d)
            slop = e.value
            if not e.is_literal or isinstance(slop, bool) or not isinstance(slop, int) or not (
                    0 <= slop <= 1000):
                raise self.fail("phrase_match's slop must be an integer from 0 to 1000", e)
        if slop == 0:  # the exact phrase: Postgres' phrase search
            s = sql.SQL("({} @@ phraseto_tsquery(%s::regconfig, %s::text))").format(tsv)
            return self._mk(n, s, [cfg, text.value], "bool")
        # every term (GIN), then their positions
        s = sql.SQL("({0} @@ plainto_tsquery(%s::regconfig, %s::text) AND vecpg.phrase_slop("
                    "{0}, to_tsvector(%s::regconfig, %s::text), %s))").format(tsv)
        return self._mk(n, s, [cfg, text.value, cfg, text.value, int(slop)], "bool")
