"""Full-text search the Postgres way: Milvus' analyzers as text search configurations,
the hidden columns of analyzed fields, and the BM25 statement.

An analyzed VARCHAR field ``text`` (``enable_analyzer=True``) gets a generated, STORED
column ``_tsv_text`` = ``to_tsvector(<config>, text)`` with a GIN index: Postgres analyzes
every row, also rows written by plain SQL. A BM25 function's input field also gets
``_len_text``, its number of terms, and a row in ``vecpg.bm25_stats`` (rows and total
length, kept by statement triggers: see ``sql/006_fulltext.sql``).

A BM25 search scores, in one statement, the rows holding any query term (found through
the GIN index) with Milvus' BM25::

    score(d) = sum over query terms t of
               idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl))
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

N and avgdl from ``vecpg.bm25_stats``, df(t) counted through the GIN index at query time,
tf and |d| from the row's tsvector: exact, so the top k is the exhaustive top k.

Nothing here talks to the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from psycopg import sql

from .errors import SchemaError

# Milvus' built-in analyzers and the configuration each maps onto. Milvus' standard
# analyzer (its default) splits on word boundaries and lowercases: Postgres' ``simple``.
# ``english`` adds stemming and English stop words: Postgres' ``english`` (Snowball).
BUILTIN = {"standard": "simple", "english": "english"}
# Snowball languages Postgres ships a configuration for (stemmer and stop words)
LANGUAGES = ("arabic", "armenian", "basque", "catalan", "danish", "dutch", "english",
             "finnish", "french", "german", "greek", "hindi", "hungarian", "indonesian",
             "irish", "italian", "lithuanian", "nepali", "norwegian", "portuguese",
             "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish",
             "yiddish")
DEFAULT_K1 = 1.2
DEFAULT_B = 0.75


def analyzer_config(params: Mapping[str, Any] | None) -> str:
    """The Postgres text search configuration for Milvus' ``analyzer_params``.

    ``None``/``{}``/``{"type": "standard"}`` → ``simple``; ``{"type": "english"}`` →
    ``english``; a custom ``{"tokenizer": "standard", "filter": [...]}`` with
    ``lowercase`` alone → ``simple``, or with ``lowercase``, a ``stemmer`` of a language and
    ``stop`` words ``_<language>_`` → that language's configuration. Anything else (the
    ``chinese``/jieba analyzers, custom stop word lists, other tokenizers) raises
    :class:`SchemaError`: Postgres could not analyze rows written by plain SQL alike.
    """
    if params is None:
        return "simple"
    if not isinstance(params, Mapping):
        raise SchemaError(f"analyzer_params must be a dict, got {params!r}")
    p = dict(params)
    if "type" in p:
        kind = p.pop("type")
        if p:
            raise SchemaError(f"analyzer_params {params!r}: options of a built-in analyzer "
                              f"({', '.join(map(repr, p))}) are not supported")
        if kind in BUILTIN:
            return BUILTIN[kind]
        raise SchemaError(f"analyzer type {kind!r} is not supported; use one of "
                          f"{', '.join(map(repr, BUILTIN))} or a standard tokenizer with "
                          "lowercase, stemmer and stop filters (see the README)")
    if not p:
        return "simple"
    tokenizer = p.pop("tokenizer", "standard")
    filters = p.pop("filter", [])
    if p or tokenizer != "standard" or not isinstance(filters, list):
        raise SchemaError(f"analyzer_params {params!r} are not supported: vecpg maps the "
                          "standard tokenizer with lowercase, stemmer and stop filters")
    lower, stem, stop = False, None, None
    for flt in filters:
        if flt == "lowercase":
            lower = True
        elif isinstance(flt, Mapping) and flt.get("type") == "stemmer" and set(flt) == {
                "type", "language"}:
            stem = str(flt["language"]).lower()
        elif isinstance(flt, Mapping) and flt.get("type") == "stop" and set(flt) == {
                "type", "stop_words"} and isinstance(flt["stop_words"], list) and len(
                flt["stop_words"]) == 1 and str(flt["stop_words"][0]).startswith("_"):
            stop = str(flt["stop_words"][0]).strip("_").lower()
        else:
            raise SchemaError(f"analyzer filter {flt!r} is not supported (lowercase, a "
                              "stemmer of a language, stop words _<language>_)")
    if not lower:
        raise SchemaError("analyzers without the lowercase filter are not supported "
                          "(Postgres' configurations lowercase)")
    if stem is None and stop is None:
        return "simple"
    if stem is None or stem != stop or stem not in LANGUAGES:
        raise SchemaError(f"analyzer {params!r}: a stemmer needs the stop words of the same "
                          f"language, one of {', '.join(LANGUAGES)}")
    return stem


def _hidden(prefix: str, field: str) -> str:
    name = prefix + field
    if len(name) <= 63:
        return name
    return f"{name[:50]}_{hashlib.sha1(field.encode()).hexdigest()[:8]}"


def tsv_column(field: str) -> str:
    """The generated tsvector column of analyzed field ``field``."""
    return _hidden("_tsv_", field)


def len_column(field: str) -> str:
    """The generated length column (number of terms) of BM25 input field ``field``."""
    return _hidden("_len_", field)


def tsvector_sql(config: str, column: str) -> sql.Composed:
    """``to_tsvector('<config>', coalesce(column, ''))`` (a NULL text has no terms)."""
    return sql.SQL("to_tsvector({}::regconfig, coalesce({}, ''))").format(
        sql.Literal(config), sql.Identifier(column))


def check_bm25_params(params: Mapping[str, Any]) -> dict[str, float]:
    """``bm25_k1`` (default 1.2, 0-3) and ``bm25_b`` (default 0.75, 0-1), as Milvus."""
    out = {"bm25_k1": DEFAULT_K1, "bm25_b": DEFAULT_B}
    for key, hi in (("bm25_k1", 3.0), ("bm25_b", 1.0)):
        v = params.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= hi:
            raise SchemaError(f"{key} must be a number in [0, {hi:g}], got {v!r}")
        out[key] = float(v)
    return out


def bm25_statement(table: sql.Composable, *, field: str, config: str, k1: float, b: float,
                   select_list: list[sql.Composable], where: list[sql.Composable],
                   pk: str, k: int) -> sql.Composed:
    """The BM25 search: ``SELECT <fields>, -score AS _vecpg_d ... ORDER BY _vecpg_d, pk
    LIMIT k`` (the negated score: vecpg's statements sort ascending, the hits say
    ``score``). Binds the query text first, then the filter's values."""
    tsv, length = sql.Identifier(tsv_column(field)), sql.Identifier(len_column(field))
    return sql.SQL(
        "WITH _vecpg_qv AS MATERIALIZED (SELECT to_tsvector({cfg}::regconfig, %s::text) AS v), "
        "_vecpg_st AS MATERIALIZED (SELECT s.docs::float8 AS n, "
        "s.total_length::float8 / nullif(s.docs, 0) AS avgdl FROM vecpg.bm25_stats s "
        "WHERE s.relid = {regclass}::regclass AND s.field = {field}), "
        "_vecpg_w AS MATERIALIZED (SELECT u.lexeme AS term, "
        "cardinality(u.positions)::float8 AS qtf, ln(1.0 + (st.n - df.df + 0.5) / "
        "(df.df + 0.5)) AS idf FROM _vecpg_qv, unnest(_vecpg_qv.v) u, _vecpg_st st, "
        "LATERAL (SELECT count(*)::float8 AS df FROM {table} x WHERE x.{tsv} @@ "
        "vecpg.lexemes_any(array_to_tsvector(ARRAY[u.lexeme]))) df) "
        "SELECT {cols}, -(SELECT sum(w.qtf * w.idf * cardinality(d.positions) * {k1p} / "
        "(cardinality(d.positions) + {k1} * (1.0 - {b} + {b} * t.{len} / st.avgdl))) "
        "FROM unnest(t.{tsv}) d JOIN _vecpg_w w ON w.term = d.lexeme, _vecpg_st st) "
        "AS _vecpg_d FROM {table} t WHERE t.{tsv} @@ (SELECT vecpg.lexemes_any(v) FROM "
        "_vecpg_qv) AND {where} ORDER BY _vecpg_d, t.{pk} LIMIT {k}").format(
        cfg=sql.Literal(config), regclass=sql.Literal(table.as_string(None)),
        field=sql.Literal(field), table=table, tsv=tsv, len=length,
        cols=sql.SQL(", ").join(select_list), k1=sql.Literal(float(k1)),
        k1p=sql.Literal(float(k1) + 1.0), b=sql.Literal(float(b)),
        where=sql.SQL(" AND ").join(where), pk=sql.Identifier(pk), k=sql.Literal(int(k)))
