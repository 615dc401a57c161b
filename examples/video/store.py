"""Clips and keyframes in one Postgres: the clips (title, duration, source images) in an
ordinary table, the keyframes' embeddings in a vecpg collection beside it, and a
screenshot's best clips found by one SQL statement that joins the two.

    <name>         id, clip_id, t (seconds), embedding vector(DIM)   (collection, COSINE)
    <name>_clips   id, title, duration, fps, n_frames, n_keyframes,
                   sources text[], moves text[]                        (table)

This replaces the Milvus overview's "Milvus for the vectors, MySQL for the rest": one
database, one round trip, and ``DISTINCT ON`` keeps each clip's best keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pgvector import Vector
from psycopg import sql

import vecpg
from vecpg import DataType

from .clips import FPS, Clip

# the statement the README shows: nearest keyframes (HNSW), best one per clip, joined
SEARCH = """
WITH hits AS (
    SELECT k.clip_id, k.t, k.embedding <=> %(v)s AS d
    FROM {keyframes} k
    ORDER BY k.embedding <=> %(v)s
    LIMIT %(candidates)s
), best AS (
    SELECT DISTINCT ON (clip_id) clip_id, t, d FROM hits ORDER BY clip_id, d
)
SELECT c.id, c.title, c.duration, c.sources, b.t, b.d
FROM best b JOIN {clips} c ON c.id = b.clip_id
ORDER BY b.d, c.id
LIMIT %(k)s"""


def _clips(client: vecpg.Client, name: str) -> sql.Identifier:
    return sql.Identifier(client.schema, f"{name}_clips")


def drop(client: vecpg.Client, name: str) -> None:
    """Drop the collection and the clips table (if they exist)."""
    client.drop_collection(name)
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_clips(client, name)))


def create(client: vecpg.Client, name: str, clips: list[Clip], keyframes: list[list[int]],
           vectors: np.ndarray, hnsw: bool = True) -> None:
    """(Re)create the clips table and the keyframe collection. ``keyframes[i]`` are the
    frame indices of ``clips[i]``'s keyframes; ``vectors`` their embeddings, in that order."""
    drop(client, name)
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("""CREATE TABLE {} (
            id bigint PRIMARY KEY, title text NOT NULL, duration real NOT NULL,
            fps real NOT NULL, n_frames integer NOT NULL, n_keyframes integer NOT NULL,
            sources text[] NOT NULL, moves text[] NOT NULL)""").format(_clips(client, name)))
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)").format(
                    _clips(client, name)),
                [(c.id, c.title, c.duration, FPS, c.n_frames, len(k),
                  [s.tile.source for s in c.shots], [s.move for s in c.shots])
                 for c, k in zip(clips, keyframes)])
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("clip_id", DataType.INT64)
    schema.add_field("t", DataType.FLOAT)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
    client.create_collection(name, schema=schema, metric_type="COSINE")
    clip_ids = np.array([c.id for c, k in zip(clips, keyframes) for _ in k], np.int64)
    times = np.array([i / FPS for k in keyframes for i in k], np.float32)
    client.insert(name, {"id": np.arange(len(clip_ids), dtype=np.int64), "clip_id": clip_ids,
                         "t": times, "embedding": vectors})
    if hnsw:
        client.create_index(name, field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64})


@dataclass(frozen=True)
class Match:
    clip_id: int
    title: str
    duration: float
    sources: list[str]
    time: float        # the best keyframe's timestamp in the clip (s)
    distance: float    # cosine distance to that keyframe


def find_clips(client: vecpg.Client, name: str, vector: np.ndarray, k: int = 5,
               candidates: int = 50, ef: int = 100) -> list[Match]:
    """The ``k`` clips whose keyframes come closest to ``vector``, best first, each with
    its best keyframe's time and the clip's row: the ``SEARCH`` join, one statement."""
    stmt = sql.SQL(SEARCH).format(keyframes=sql.Identifier(client.schema, name),
                                  clips=_clips(client, name))
    with client.connection() as conn, conn.transaction():
        # SET LOCAL: this transaction only (and never below the candidates wanted)
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(
            sql.Literal(max(ef, candidates))))
        rows = conn.execute(stmt, {"v": Vector(vector), "candidates": candidates,
                                   "k": k}).fetchall()
    return [Match(int(r[0]), str(r[1]), float(r[2]), list(r[3]), float(r[4]), float(r[5]))
            for r in rows]


@dataclass(frozen=True)
class Scores:
    n: int
    top1: float           # share of screenshots whose best clip is the right one
    top5: float           # ... whose right clip is among the best five
    time_error: float     # median |best keyframe's time - screenshot's time| (s), top-1 hits
    within_1s: float      # share of top-1 hits whose time is within 1 s
    latency_ms: float     # median wall time of one find_clips call
    latency_p95_ms: float


def evaluate(client: vecpg.Client, name: str, truth: list[tuple[int, float]],
             vectors: np.ndarray, k: int = 5) -> tuple[Scores, list[list[Match]]]:
    """Search every screenshot (``truth[i]`` = its clip id and time, ``vectors[i]`` its
    embedding) one statement at a time; the scores and the matches."""
    import time

    matches, lat = [], []
    for v in vectors:
        t0 = time.perf_counter()
        matches.append(find_clips(client, name, v, k))
        lat.append(time.perf_counter() - t0)
    top1 = [bool(m) and m[0].clip_id == c for m, (c, _) in zip(matches, truth)]
    top5 = [c in {x.clip_id for x in m[:5]} for m, (c, _) in zip(matches, truth)]
    err = np.array([abs(m[0].time - t) for m, (_, t), ok in zip(matches, truth, top1) if ok])
    return Scores(len(truth), float(np.mean(top1)), float(np.mean(top5)),
                  float(np.median(err)) if len(err) else float("nan"),
                  float(np.mean(err <= 1.0)) if len(err) else float("nan"),
                  1000 * float(np.median(lat)), 1000 * float(np.percentile(lat, 95))), matches
