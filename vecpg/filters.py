"""Milvus boolean filter expressions → parameterized Postgres SQL.

A real parser (lark, LALR) builds a tree; each node compiles to ``psycopg.sql`` with ``%s``
placeholders and its values in a params list, so user text reaches SQL only as parameters
or quoted identifiers. Example::

    frag = compile_filter('age > 20 and tag in ["a", "b"] and meta["color"] == "red"', schema)
    cur.execute(sql.SQL("SELECT id FROM t WHERE {}").format(frag.sql), frag.params)

Semantics chosen where Milvus is loose:
- JSON values (JSON fields, dynamic fields) are compared by their JSON type: a number
  comparison matches only rows whose value there is a number, a string comparison only
  strings; other rows (and missing keys) simply do not match — never a cast error.
- Integer literals beyond int64 are compared as numeric (they match nothing out of range).
- ``/`` is true division and ``%`` a modulo on numeric; dividing by zero gives NULL (no match).
- ``tags[0]`` indexes ARRAY fields from 0, as Milvus does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from psycopg import sql
from psycopg.types.json import Jsonb

from .errors import FilterError
from .schema import META_COLUMN, CollectionSchema, DataType, FieldSchema

MAX_LENGTH = 65536
MAX_DEPTH = 200

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr OR and_expr -> or_
?and_expr: not_expr | and_expr AND not_expr -> and_
?not_expr: predicate | NOT not_expr -> not_
?predicate: sum
    | sum (COMP_OP sum)+ -> compare
    | sum IN list -> in_
    | sum NOT IN list -> not_in
    | sum LIKE STRING -> like
    | sum IS NULL -> is_null
    | sum IS NOT NULL -> is_not_null
?sum: product | sum ADD_OP product -> arith
?product: unary | product MUL_OP unary -> arith
?unary: power | MINUS unary -> neg | PLUS unary
?power: atom | atom POW unary -> pow
?atom: literal | path | call | list | "(" or_expr ")"
call: NAME "(" [or_expr ("," or_expr)*] ")"
path: (NAME | META) ("[" (STRING | INT) "]")*
list: "[" [or_expr ("," or_expr)*] "]"
literal: NUMBER | STRING | TRUE | FALSE

OR.2: /(?i:or)(?![A-Za-z0-9_])/ | "||"
AND.2: /(?i:and)(?![A-Za-z0-9_])/ | "&&"
NOT.2: /(?i:not)(?![A-Za-z0-9_])/ | /!(?!=)/
IN.2: /(?i:in)(?![A-Za-z0-9_])/
LIKE.2: /(?i:like)(?![A-Za-z0-9_])/
IS.2: /(?i:is)(?![A-Za-z0-9_])/
NULL.2: /(?i:null)(?![A-Za-z0-9_])/
TRUE.2: /(?i:true)(?![A-Za-z0-9_])/
FALSE.2: /(?i:false)(?![A-Za-z0-9_])/
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
POW.2: "**"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
MINUS.3: "-"
PLUS.3: "+"
META: "$meta"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
INT: /\d+/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
STRING: /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/
%ignore /\s+/
"""

_parser = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@dataclass(frozen=True)
class Fragment:
    """A piece of SQL with ``%s`` placeholders and the values for them, in order."""

    sql: sql.Composable
    params: list[Any] = field(default_factory=list)


# value kinds: "bool", "num", "str", "json", "array", "null"; literals keep their value
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
    return "vector"


def compile_filter(expression: str, schema: CollectionSchema, *,
                   qualifier: str | None = None) -> Fragment:
    """Compile a Milvus filter expression for a table of ``schema``.

    ``qualifier`` prefixes columns with a table alias. Raises :class:`FilterError` with the
    position and text of the offending token.
    """
    if expression is None or not str(expression).strip():
        return Fragment(sql.SQL("TRUE"), [])
    if not isinstance(expression, str):
        raise FilterError(f"a filter must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise FilterError(f"filter longer than {MAX_LENGTH} characters")
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
    c = _Compiler(expression, schema, qualifier)
    try:
        out = c.compile(tree, 0)
    except RecursionError:
        raise FilterError("filter nests too deeply", expression=expression) from None
    if out.kind == "json":
        out = c.json_as(out, "bool")
    if out.kind not in ("bool", "null"):
        raise FilterError("a filter must be a condition, not a value", expression=expression,
                          position=out.pos, token=out.text)
    return Fragment(out.sql, out.params)


def _tokens(n: Tree) -> list[Token]:
    """The children of a rule whose children are all tokens (paths, literals, like)."""
    return [c for c in n.children if isinstance(c, Token)]


class _Compiler:
    def __init__(self, expression: str, schema: CollectionSchema, qualifier: str | None) -> None:
        self.expr = expression
        self.schema = schema
        self.qualifier = qualifier

    # -- helpers ------------------------------------------------------------------------
    def fail(self, msg: str, node: Any) -> FilterError:
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
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'string' THEN {0} #>> '{{}}' END)").format(e.sql)
        else:
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = {1} THEN ({0})::{2} END)").format(
                e.sql, sql.Literal(jtype), sql.SQL(cast))
        return _Expr(s, e.params * 2, kind, e.pos, e.text)

    def _literal_sql(self, e: _Expr, kind: str) -> _Expr:
        """Bind a literal with an explicit type for comparison with a ``kind`` value."""
        v = e.value
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
        if a.kind == "json" and b.kind == "json":
            return a, b
        if a.kind == "json":
            a = self.json_as(a, self._target(b, op))
        if b.kind == "json":
            b = self.json_as(b, self._target(a, op))
        if a.kind != b.kind or a.kind in ("array", "vector", "null"):
            bad = b if b.is_literal or a.kind in ("num", "str", "bool") else a
            raise self.fail(f"cannot compare {a.kind} {a.text!r} with {b.kind} {b.text!r}", bad)
        if a.is_literal and not b.is_literal:
            a = self._literal_sql(a, b.kind)
        if b.is_literal:
            b = self._literal_sql(b, a.kind)
        if a.is_literal and b.is_literal:
            a = self._literal_sql(a, a.kind)
        return a, b

    def _target(self, other: _Expr, op: Any) -> str:
        if other.kind in ("num", "str", "bool"):
            return other.kind
        raise self.fail(f"cannot compare a JSON value with {other.kind} {other.text!r}", other)

    # -- tree walk ------------------------------------------------------------------------
    def compile(self, node: Any, depth: int) -> _Expr:
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

    def t_or(self, n: Tree, d: int) -> _Expr:
        a, b = (self._bool(self.compile(c, d)) for c in (n.children[0], n.children[2]))
        return self._mk(n, sql.SQL("({} OR {})").format(a.sql, b.sql), a.params + b.params, "bool")

    def t_and(self, n: Tree, d: int) -> _Expr:
        a, b = (self._bool(self.compile(c, d)) for c in (n.children[0], n.children[2]))
        return self._mk(n, sql.SQL("({} AND {})").format(a.sql, b.sql), a.params + b.params, "bool")

    def t_not(self, n: Tree, d: int) -> _Expr:
        a = self._bool(self.compile(n.children[1], d))
        return self._mk(n, sql.SQL("(NOT {})").format(a.sql), a.params, "bool")

    def t_literal(self, n: Tree, d: int) -> _Expr:
        tok = _tokens(n)[0]
        if tok.type == "NUMBER":
            text = str(tok)
            v: Any = float(text) if any(ch in text for ch in ".eE") else int(text)
            return self._mk(n, sql.SQL("%s"), [v], "num", value=v, is_literal=True)
        if tok.type == "STRING":
            v = self._string(tok)
            return self._mk(n, sql.SQL("%s"), [v], "str", value=v, is_literal=True)
        v = tok.type == "TRUE"
        return self._mk(n, sql.SQL("%s"), [v], "bool", value=v, is_literal=True)

    def _string(self, tok: Token) -> str:
        try:
            v = ast.literal_eval(str(tok))
        except (ValueError, SyntaxError):
            raise self.fail("malformed string literal", tok) from None
        if not isinstance(v, str) or "\x00" in v:
            raise self.fail("malformed string literal", tok)
        return v

    def t_list(self, n: Tree, d: int) -> _Expr:
        items = [self.compile(c, d) for c in n.children]
        for it in items:
            if not it.is_literal:
                raise self.fail("list elements must be literals", it)
        return self._mk(n, sql.SQL("%s"), [], "list", value=[it.value for it in items],
                        is_literal=True)

    def t_path(self, n: Tree, d: int) -> _Expr:
        head, *steps = _tokens(n)
        name = str(head)
        if head.type == "META" or (self.schema.get(name) is None and name != "$meta"):
            if head.type != "META" and not self.schema.enable_dynamic_field:
                raise self.fail(f"unknown field {name!r}", head)
            if head.type == "META":
                if not steps or steps[0].type != "STRING":
                    raise self.fail('$meta needs a key: $meta["name"]', head)
                key, steps = self._string(steps[0]), steps[1:]
            else:
                key = name
            e = self._mk(n, sql.SQL("({} -> %s::text)").format(self._col(META_COLUMN)), [key], "json")
            return self._json_steps(e, steps, n)
        f = self.schema.field(name)
        kind = _kind_of(f.dtype)
        if kind == "vector":
            raise self.fail(f"vector field {name!r} cannot be used in a filter", head)
        e = self._mk(n, self._col(name), [], kind)
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
                            [int(steps[0])], _kind_of(f.element_type))
        if steps:
            raise self.fail(f"field {name!r} of type {f.dtype.value} cannot be indexed", steps[0])
        return e

    def _json_steps(self, e: _Expr, steps: list[Token], n: Tree) -> _Expr:
        s, params = e.sql, list(e.params)
        for st in steps:
            if st.type == "STRING":
                s, params = sql.SQL("({} -> %s::text)").format(s), params + [self._string(st)]
            else:
                s, params = sql.SQL("({} -> %s::int)").format(s), params + [int(st)]
        return self._mk(n, s, params, "json")

    def t_compare(self, n: Tree, d: int) -> _Expr:
        parts = n.children
        operands = [self.compile(parts[i], d) for i in range(0, len(parts), 2)]
        ops = [parts[i] for i in range(1, len(parts), 2)]
        conds: list[sql.Composable] = []
        params: list[Any] = []
        for i, op in enumerate(ops):
            a, b = self._coerce_pair(operands[i], operands[i + 1], op)
            if a.kind == "json":  # JSON vs JSON: only equality is well defined
                if str(op) not in ("==", "!="):
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
        values = lst.value
        if not values:
            return self._mk(n, sql.SQL("TRUE" if negate else "FALSE"), [], "bool")
        if a.kind == "json":
            arr = [Jsonb(v) for v in values]
            s = sql.SQL("({} = ANY(%s::jsonb[]))").format(a.sql)
            out = self._mk(n, s, a.params + [arr], "bool")
        else:
            if a.kind not in ("num", "str", "bool"):
                raise self.fail(f"'in' needs a scalar on its left, got {a.kind}", a)
            cast = self._list_cast(a.kind, values, lst)
            if cast == "numeric":  # one element type per array: ints and floats as Decimal
                values = [Decimal(repr(v)) for v in values]
            s = sql.SQL("({} = ANY(%s::{}[]))").format(a.sql, sql.SQL(cast))
            out = self._mk(n, s, a.params + [list(values)], "bool")
        if negate:
            out = self._mk(n, sql.SQL("(NOT {})").format(out.sql), out.params, "bool")
        return out

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
        return self._in(n, d, False)

    def t_not_in(self, n: Tree, d: int) -> _Expr:
        return self._in(n, d, True)

    def t_like(self, n: Tree, d: int) -> _Expr:
        a = self.compile(n.children[0], d)
        if a.kind == "json":
            a = self.json_as(a, "str")
        if a.kind != "str":
            raise self.fail(f"'like' needs a string on its left, got {a.kind} {a.text!r}", a)
        pattern = self._string(_tokens(n)[-1])
        return self._mk(n, sql.SQL("({} LIKE %s::text)").format(a.sql), a.params + [pattern], "bool")

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
        return self._null(n, d, False)

    def t_is_not_null(self, n: Tree, d: int) -> _Expr:
        return self._null(n, d, True)

    def _num(self, e: _Expr) -> _Expr:
        if e.kind == "json":
            return self.json_as(e, "num")
        if e.kind != "num":
            raise self.fail(f"arithmetic needs numbers, got {e.kind} {e.text!r}", e)
        if e.is_literal:
            return self._literal_sql(e, "num")
        return e

    def t_arith(self, n: Tree, d: int) -> _Expr:
        a, op, b = n.children
        x, y = self._num(self.compile(a, d)), self._num(self.compile(b, d))
        o = str(op)
        if o in ("+", "-", "*"):
            s = sql.SQL("({} {} {})").format(x.sql, sql.SQL(o), y.sql)
        else:  # true division and modulo on numeric; x / 0 is NULL, not an error
            o = "%%" if o == "%" else o  # the statement goes out with parameters
            s = sql.SQL("(({})::numeric {} NULLIF(({})::numeric, 0))").format(x.sql, sql.SQL(o), y.sql)
        return self._mk(n, s, x.params + y.params, "num")

    def t_pow(self, n: Tree, d: int) -> _Expr:
        x, y = self._num(self.compile(n.children[0], d)), self._num(self.compile(n.children[2], d))
        return self._mk(n, sql.SQL("power(({})::numeric, ({})::numeric)").format(x.sql, y.sql),
                        x.params + y.params, "num")

    def t_neg(self, n: Tree, d: int) -> _Expr:
        inner = self.compile(n.children[1], d)
        if inner.is_literal and inner.kind == "num":
            v = -inner.value
            return self._mk(n, sql.SQL("%s"), [v], "num", value=v, is_literal=True)
        x = self._num(inner)
        return self._mk(n, sql.SQL("(- {})").format(x.sql), x.params, "num")

    def t_call(self, n: Tree, d: int) -> _Expr:
        name_tok, *args_nodes = n.children
        fname = str(name_tok).lower()
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
        if fname.startswith("json_") and target.kind != "json":
            raise self.fail(f"{fname} needs a JSON field, got {target.text!r}", target)
        if fname == "array_length":
            if target.kind == "array":
                return self._mk(n, sql.SQL("cardinality({})").format(target.sql), target.params, "num")
            s = sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'array' THEN jsonb_array_length({0}) END)"
                        ).format(target.sql)
            return self._mk(n, s, target.params * 2, "num")
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
            if target.elem.dtype.is_integer:
                if any(isinstance(v, float) for v in values):
                    raise self.fail(f"{target.text!r} holds integers; got {arg.text}", arg)
            elif kind == "num":
                values = [float(v) for v in values]  # one element type per array
            op = "&&" if mode == "any" else "@>"
            # the column's own element type: varchar[] has no @> / && with text[]
            elem = "varchar" if target.elem.dtype is DataType.VARCHAR else _PG_ELEM[target.elem.dtype]
            s = sql.SQL("({} {} %s::{}[])").format(target.sql, sql.SQL(op), sql.SQL(elem))
            return self._mk(n, s, target.params + [list(values)], "bool")
        if mode == "any":
            s = sql.SQL("(jsonb_typeof({0}) = 'array' AND EXISTS (SELECT 1 FROM "
                        "jsonb_array_elements({0}) AS e(v) WHERE e.v = ANY(%s::jsonb[])))"
                        ).format(target.sql)
            return self._mk(n, s, target.params * 2 + [[Jsonb(v) for v in values]], "bool")
        s = sql.SQL("(jsonb_typeof({0}) = 'array' AND {0} @> %s::jsonb)").format(target.sql)
        return self._mk(n, s, target.params * 2 + [Jsonb(list(values))], "bool")
