"""Clips in vecpg: their embeddings in a collection, their records in an ordinary table of
the same Postgres, and search by example clip joined back to the records in one query.

    <name>         id, embedding vector(190)                        (collection, COSINE)
    <name>_clips   clip_id, word, voice, speed, pitch, duration, wav  (table)

This is the Milvus overview's audio search without its "Milvus plus MySQL": there, the
vector search returns ids and a second database maps them to the clips' records; here one
SQL statement does both.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
from pgvector import Vector
from psycopg import sql

import vecpg
from vecpg import DataType

from .speech import Clip


def _clips(client: vecpg.Client, name: str) -> sql.Identifier:
    return sql.Identifier(client.schema, f"{name}_clips")


def drop(client: vecpg.Client, name: str) -> None:
    """Drop the collection and the clips table, if they exist."""
    client.drop_collection(name)
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_clips(client, name)))


def create(client: vecpg.Client, name: str, clips: list[Clip], vectors: np.ndarray,
           hnsw: bool = True) -> None:
    """(Re)create the clips table and the collection; clip ``i`` gets id ``i + 1``."""
    drop(client, name)
    ids = np.arange(1, len(clips) + 1, dtype=np.int64)
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("""
            CREATE TABLE {} (clip_id bigint PRIMARY KEY, word text NOT NULL,
                             voice text NOT NULL, speed smallint NOT NULL,
                             pitch smallint NOT NULL, duration real NOT NULL,
                             wav text NOT NULL)""").format(_clips(client, name)))
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(
                _clips(client, name))) as cp:
            for i, c in zip(ids, clips):
                cp.write_row((int(i), c.word, c.spec.voice, c.spec.speed, c.spec.pitch,
                              c.duration, c.path.name))
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
    client.create_collection(name, schema=schema, metric_type="COSINE")
    client.insert(name, {"id": ids, "embedding": vectors})
    if hnsw:
        client.create_index(name, field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64})


@dataclass
class Match:
    clip_id: int
    word: str
    voice: str
    speed: int
    duration: float
    distance: float     # cosine distance, 1 - cos


# the statement shown in README.md
JOIN_SQL = """
    SELECT c.id, k.word, k.voice, k.speed, k.duration, c.embedding <=> %(v)s AS distance
    FROM {coll} c JOIN {clips} k ON k.clip_id = c.id
    ORDER BY c.embedding <=> %(v)s
    LIMIT %(k)s"""


def search_clip(client: vecpg.Client, name: str, vector: np.ndarray, k: int = 5
                ) -> list[Match]:
    """The ``k`` stored clips nearest to ``vector``, with their records: one SQL join of
    the vector search with the clips table."""
    stmt = sql.SQL(JOIN_SQL).format(coll=sql.Identifier(client.schema, name),
                                    clips=_clips(client, name))
    with client.connection() as conn:
        rows = conn.execute(stmt, {"v": Vector(vector), "k": k}).fetchall()
    return [Match(int(r[0]), str(r[1]), str(r[2]), int(r[3]), float(r[4]), float(r[5]))
            for r in rows]


@dataclass
class Evaluation:
    k: int
    top1: float              # share of queries whose nearest clip says the query's word
    topk: float              # ... whose k nearest clips include one that says it
    join_ms: float           # median latency of search_clip (the join), ms per query
    search_ms: float         # median latency of client.search (ids only), ms per query
    results: list[list[Match]]


def evaluate(client: vecpg.Client, name: str, vectors: np.ndarray, words: list[str],
             k: int = 5) -> Evaluation:
    """Word accuracy of the held-out queries, one query at a time, each timed."""
    results, join_t, search_t = [], [], []
    for v in vectors:
        t0 = time.perf_counter()
        results.append(search_clip(client, name, v, k))
        join_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.search(name, [v], limit=k)
        search_t.append(time.perf_counter() - t0)
    top1 = float(np.mean([r[0].word == w for r, w in zip(results, words)]))
    topk = float(np.mean([any(m.word == w for m in r) for r, w in zip(results, words)]))
    return Evaluation(k, top1, topk, 1000 * statistics.median(join_t),
                      1000 * statistics.median(search_t), results)
