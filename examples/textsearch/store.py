"""The tables and the three retrievers.

    <name>           id, text (english analyzer), embedding vector(384), sparse   (collection)
    <name>_synsets   id, lemma, pos, lexfile_id, wn_offset                        (table)
    <name>_lexfiles  id, name                                                    (table)

The collection holds what is searched (the text, its vector, its BM25 terms); what is
known about each document is in plain tables, joined to the hits in SQL (:func:`lookup`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from psycopg import sql

import vecpg
from vecpg import AnnSearchRequest, DataType, Function, FunctionType, RRFRanker
from vecpg.progress import Progress

from .corpus import Corpus

MODES = ("dense", "bm25", "hybrid")
BATCH = 5000
BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}  # Milvus' defaults
HYBRID_DEPTH = 50   # hits taken from each retriever before RRF fuses them
RRF_K = 60          # Milvus' default


def _tables(client: vecpg.Client, name: str) -> dict[str, sql.Identifier]:
    return {"d": sql.Identifier(client.schema, name),
            "s": sql.Identifier(client.schema, f"{name}_synsets"),
            "l": sql.Identifier(client.schema, f"{name}_lexfiles")}


def drop(client: vecpg.Client, name: str) -> None:
    """Drop the collection and its two tables, if they exist."""
    t = _tables(client, name)
    client.drop_collection(name)
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(t["s"], t["l"]))


def create(client: vecpg.Client, name: str, corpus: Corpus, hnsw: bool = True,
           progress: bool = True) -> None:
    """(Re)create the collection (HNSW on the vectors when ``hnsw``, a BM25 index on the
    text) and the metadata tables for ``corpus``, inserting ``BATCH`` rows at a time."""
    drop(client, name)
    t = _tables(client, name)
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE TABLE {} (id smallint PRIMARY KEY, name text NOT NULL)")
                     .format(t["l"]))
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, lemma text NOT NULL, "
                             "pos char(1) NOT NULL, lexfile_id smallint NOT NULL REFERENCES {}, "
                             "wn_offset bigint NOT NULL)").format(t["s"], t["l"]))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(t["l"]),
                            list(enumerate(corpus.lexnames)))
            lex = {n: i for i, n in enumerate(corpus.lexnames)}
            with cur.copy(sql.SQL("COPY {} FROM STDIN").format(t["s"])) as cp:
                for s in corpus.synsets:
                    cp.write_row((s.id, s.lemma, s.pos, lex[s.lexfile], s.wn_offset))

    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=4000, enable_analyzer=True,
                     analyzer_params={"type": "english"})
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(corpus.embeddings.shape[1]))
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sparse"]))
    client.create_collection(name, schema=schema)
    index = client.prepare_index_params()
    index.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
    client.create_index(name, index)
    n = len(corpus.synsets)
    with Progress("insert", total=n, stream=None if progress else io.StringIO()) as bar:
        for lo in range(0, n, BATCH):
            part = corpus.synsets[lo:lo + BATCH]
            client.insert(name, {"id": np.array([s.id for s in part], dtype=np.int64),
                                 "text": [s.text for s in part],
                                 "embedding": corpus.embeddings[lo:lo + BATCH]})
            bar.update(len(part))
    if hnsw:
        client.create_index(name, field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64})
    with client.connection() as conn:
        for tbl in t.values():
            conn.execute(sql.SQL("ANALYZE {}").format(tbl))


def retrieve(client: vecpg.Client, name: str, mode: str, texts: Sequence[str],
             vectors: np.ndarray, k: int = 10) -> list[list[tuple[int, float]]]:
    """The top ``k`` ``(id, score)`` per query, best first: ``dense`` (cosine similarity of
    the query's vector), ``bm25`` (BM25 score of the query's text) or ``hybrid`` (both
    retrievers' top ``HYBRID_DEPTH`` fused by reciprocal rank, Milvus' ``RRFRanker``)."""
    if mode == "dense":
        res = client.search(name, list(vectors), anns_field="embedding", limit=k,
                            search_params={"metric_type": "COSINE"})
    elif mode == "bm25":
        res = client.search(name, list(texts), anns_field="sparse", limit=k,
                            search_params={"metric_type": "BM25"})
    elif mode == "hybrid":
        depth = max(k, HYBRID_DEPTH)
        res = client.hybrid_search(name, [
            AnnSearchRequest(list(vectors), "embedding", {"metric_type": "COSINE"}, depth),
            AnnSearchRequest(list(texts), "sparse", {"metric_type": "BM25"}, depth),
        ], RRFRanker(RRF_K), limit=k)
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return [[(int(h.id), float(h.distance)) for h in hits] for hits in res]


@dataclass
class Document:
    rank: int
    score: float
    lemma: str
    pos: str
    lexfile: str
    wn_offset: int
    text: str


def lookup(client: vecpg.Client, name: str, hits: Sequence[tuple[int, float]]
           ) -> list[Document]:
    """The documents behind one query's ``hits``, in their order, with their metadata:
    one SQL statement joining the ranked ids with the collection and both tables."""
    t = _tables(client, name)
    stmt = sql.SQL("""
        SELECT h.rank, h.score, s.lemma, s.pos, l.name, s.wn_offset, d.text
        FROM unnest(%(ids)s::bigint[], %(scores)s::float8[]) WITH ORDINALITY AS h(id, score, rank)
        JOIN {d} d ON d.id = h.id
        JOIN {s} s ON s.id = h.id
        JOIN {l} l ON l.id = s.lexfile_id
        ORDER BY h.rank""").format(**t)
    with client.connection() as conn:
        rows = conn.execute(stmt, {"ids": [i for i, _ in hits],
                                   "scores": [s for _, s in hits]}).fetchall()
    return [Document(int(r[0]), float(r[1]), r[2], r[3], r[4], int(r[5]), r[6]) for r in rows]
