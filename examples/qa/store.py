"""The tables: questions (a vecpg collection with their embeddings) pointing at answers
and categories (ordinary tables); a new question gets its best answers in one SQL join.

    <name>             id, question, answer_id, embedding vector(384)   (collection)
    <name>_answers     id, category_id, text                            (table)
    <name>_categories  id, name                                         (table)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pgvector import Vector
from psycopg import sql

import vecpg
from vecpg import DataType

from .corpus import Pair


def _tables(client: vecpg.Client, name: str) -> dict[str, sql.Identifier]:
    return {"q": sql.Identifier(client.schema, name),
            "a": sql.Identifier(client.schema, f"{name}_answers"),
            "c": sql.Identifier(client.schema, f"{name}_categories")}


def drop(client: vecpg.Client, name: str) -> None:
    """Drop the collection and its two tables, if they exist."""
    t = _tables(client, name)
    client.drop_collection(name)
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(t["a"], t["c"]))


def create(client: vecpg.Client, name: str, pairs: Sequence[Pair], embeddings: np.ndarray,
           hnsw: bool = False) -> None:
    """(Re)create the collection and tables for ``pairs``; ``embeddings[i]`` embeds
    ``pairs[i].question``. Identical answers in one category are stored once.

    No vector index unless ``hnsw``: a few thousand questions are scanned exactly in a
    millisecond or two, and exact answers are the same on every rebuild (an HNSW graph
    is built with random levels, so its approximate answers may not be)."""
    drop(client, name)
    t = _tables(client, name)
    cats = sorted({p.category for p in pairs})
    answer_ids: dict[tuple[str, str], int] = {}
    for p in pairs:
        answer_ids.setdefault((p.category, p.answer), len(answer_ids) + 1)
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, name text UNIQUE NOT NULL)")
                     .format(t["c"]))
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, category_id integer NOT NULL"
                             " REFERENCES {}, text text NOT NULL)").format(t["a"], t["c"]))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(t["c"]),
                            [(i + 1, c) for i, c in enumerate(cats)])
            copy = sql.SQL("COPY {} (id, category_id, text) FROM STDIN").format(t["a"])
            with cur.copy(copy) as cp:
                for (cat, text), aid in answer_ids.items():
                    cp.write_row((aid, cats.index(cat) + 1, text))

    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("question", DataType.VARCHAR, max_length=4000)
    schema.add_field("answer_id", DataType.INT64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(embeddings.shape[1]))
    client.create_collection(name, schema=schema, metric_type="COSINE")
    client.insert(name, {"id": np.arange(1, len(pairs) + 1),
                         "question": [p.question for p in pairs],
                         "answer_id": np.array([answer_ids[(p.category, p.answer)] for p in pairs]),
                         "embedding": embeddings.astype(np.float32)})
    if hnsw:
        client.create_index(name, field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64})
    with client.connection() as conn:
        for tbl in t.values():
            conn.execute(sql.SQL("ANALYZE {}").format(tbl))


@dataclass
class Answer:
    answer: str
    category: str
    similarity: float     # cosine similarity of the closest stored question
    matched_question: str


def ask(client: vecpg.Client, name: str, embedding: np.ndarray, k: int = 3,
        category: str | None = None, candidates: int = 20) -> list[Answer]:
    """The ``k`` best distinct answers for a question's ``embedding``: the ``candidates``
    nearest stored questions (exact, or HNSW when indexed; ties by id), joined with their
    answers and categories, best question per answer. One SQL statement."""
    t = _tables(client, name)
    stmt = sql.SQL("""
        SELECT a.text, c.name, max(s.sim) AS sim,
               (array_agg(s.question ORDER BY s.sim DESC))[1]
        FROM (SELECT q.question, q.answer_id, 1 - (q.embedding <=> %(v)s) AS sim
              FROM {q} q ORDER BY q.embedding <=> %(v)s, q.id LIMIT %(n)s) s
        JOIN {a} a ON a.id = s.answer_id
        JOIN {c} c ON c.id = a.category_id
        WHERE %(cat)s::text IS NULL OR c.name = %(cat)s
        GROUP BY a.id, a.text, c.name
        ORDER BY sim DESC, a.id LIMIT %(k)s""").format(**t)
    with client.connection() as conn:
        rows = conn.execute(stmt, {"v": Vector(embedding), "n": max(candidates, k),
                                   "cat": category, "k": k}).fetchall()
    return [Answer(text, cat, float(sim), question) for text, cat, sim, question in rows]


def nearest_other_agreement(client: vecpg.Client, name: str) -> tuple[int, int, int, int]:
    """Leave-one-out in one SQL statement: for every stored question, its nearest *other*
    question (LATERAL join), found exactly (index scans off, ties by id) so that the counts
    are the same on every rebuild. Returns (questions, same category, questions whose answer
    has another question, of those the ones whose nearest other question has the same
    answer)."""
    t = _tables(client, name)
    stmt = sql.SQL("""
        WITH nn AS (
            SELECT q.answer_id, n.answer_id AS nn_answer,
                   count(*) OVER (PARTITION BY q.answer_id) AS n_same
            FROM {q} q CROSS JOIN LATERAL (
                SELECT o.answer_id FROM {q} o WHERE o.id <> q.id
                ORDER BY o.embedding <=> q.embedding, o.id LIMIT 1) n)
        SELECT count(*), count(*) FILTER (WHERE a.category_id = b.category_id),
               count(*) FILTER (WHERE n_same > 1),
               count(*) FILTER (WHERE n_same > 1 AND nn.answer_id = nn.nn_answer)
        FROM nn JOIN {a} a ON a.id = nn.answer_id JOIN {a} b ON b.id = nn.nn_answer""").format(**t)
    with client.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_indexscan = off")  # an HNSW index would approximate
        row = conn.execute(stmt).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
