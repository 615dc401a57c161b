"""Store labelled sequences in vecpg and classify new ones by a k-nearest-neighbour vote,
in one SQL statement that joins the neighbours with the families table.

    <name>            id, family_id, length, kmers vector(4**k)   (collection, COSINE)
    <name>_families   id, name, divergence                        (table)
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np
from pgvector import Vector
from psycopg import sql

import vecpg
from vecpg import DataType

from .sequences import Sequence, kmer_counts


def _families(client: vecpg.Client, name: str) -> sql.Identifier:
    return sql.Identifier(client.schema, f"{name}_families")


def drop(client: vecpg.Client, name: str) -> None:
    client.drop_collection(name)
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_families(client, name)))


def create(client: vecpg.Client, name: str, train: Seq[Sequence], k: int = 5,
           family_names: dict[int, str] | None = None, hnsw: bool = True) -> None:
    """(Re)create the collection of ``train`` sequences and the families table."""
    drop(client, name)
    fams = sorted({s.family for s in train})
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, name text NOT NULL)")
                     .format(_families(client, name)))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(
                _families(client, name)),
                [(f, (family_names or {}).get(f, f"family {f}")) for f in fams])
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("family_id", DataType.INT32)
    schema.add_field("length", DataType.INT32)
    schema.add_field("kmers", DataType.FLOAT_VECTOR, dim=4 ** k)
    client.create_collection(name, schema=schema, metric_type="COSINE")
    client.insert(name, {"id": np.arange(len(train)),
                         "family_id": np.array([s.family for s in train], dtype=np.int32),
                         "length": np.array([len(s.seq) for s in train], dtype=np.int32),
                         "kmers": kmer_counts([s.seq for s in train], k)})
    if hnsw:
        client.create_index(name, field_name="kmers", index_type="HNSW", metric_type="COSINE",
                            params={"M": 16, "efConstruction": 64})


def classify(client: vecpg.Client, name: str, vectors: np.ndarray,
             neighbours: int = 5) -> list[tuple[int, str, int]]:
    """For each k-mer vector: (family id, family name, votes) of the majority among its
    ``neighbours`` nearest stored sequences; ties go to the family with the nearest
    member. One SQL statement per query."""
    stmt = sql.SQL("""
        SELECT f.id, f.name, count(*) AS votes
        FROM (SELECT family_id, kmers <=> %(v)s AS d FROM {coll}
              ORDER BY kmers <=> %(v)s LIMIT %(n)s) nn
        JOIN {fam} f ON f.id = nn.family_id
        GROUP BY f.id, f.name ORDER BY votes DESC, min(nn.d), f.id LIMIT 1""").format(
        coll=sql.Identifier(client.schema, name), fam=_families(client, name))
    out = []
    with client.connection() as conn, conn.cursor() as cur:
        for v in vectors:
            fid, fname, votes = cur.execute(stmt, {"v": Vector(v), "n": neighbours}).fetchone()
            out.append((int(fid), fname, int(votes)))
    return out
