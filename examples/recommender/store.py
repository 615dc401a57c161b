"""The tables and the recommendation query.

    <name>           id, title, genre, vector vector(f+1)   (collection: items, metric IP)
    <name>_users     id, vector vector(f+1)                 (collection: users)
    <name>_ratings   user_id, item_id, rating               (table, primary key both ids)

A user's recommendations are one SQL statement: items ordered by inner product with the
user's vector, NOT EXISTS a rating of that item by that user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psycopg import sql

import vecpg
from vecpg import DataType

from .als import Factors
from .ratings import GENRES, Ratings


def _ratings(client: vecpg.Client, name: str) -> sql.Identifier:
    return sql.Identifier(client.schema, f"{name}_ratings")


def drop(client: vecpg.Client, name: str) -> None:
    client.drop_collection(name)
    client.drop_collection(f"{name}_users")
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_ratings(client, name)))


def create(client: vecpg.Client, name: str, seen: Ratings, f: Factors) -> None:
    """(Re)create item and user collections from ``f`` and the ratings table from
    ``seen`` (the ratings a user has already given)."""
    drop(client, name)
    items, users = f.item_vectors(), f.user_vectors()
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=200)
    schema.add_field("genre", DataType.VARCHAR, max_length=40)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=items.shape[1])
    client.create_collection(name, schema=schema, metric_type="IP")
    client.insert(name, {"id": np.arange(len(items)), "title": seen.item_title,
                         "genre": [GENRES[g] for g in seen.item_genre], "vector": items})
    client.create_collection(f"{name}_users", dimension=users.shape[1], metric_type="IP",
                             enable_dynamic_field=False)
    client.insert(f"{name}_users", {"id": np.arange(len(users)), "vector": users})
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE TABLE {} (user_id bigint, item_id bigint, rating real, "
                             "PRIMARY KEY (user_id, item_id))").format(_ratings(client, name)))
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(
                _ratings(client, name))) as cp:
            for row in zip(seen.users.tolist(), seen.items.tolist(), seen.values.tolist()):
                cp.write_row(row)
        conn.execute(sql.SQL("ANALYZE {}").format(_ratings(client, name)))


@dataclass
class Rec:
    item: int
    title: str
    genre: str
    score: float   # p_u . q_i + b_i


def recommend(client: vecpg.Client, name: str, user: int, k: int = 10,
              genre: str | None = None) -> list[Rec]:
    """The ``k`` items with the largest inner product with ``user``'s vector that the user
    has not rated (optionally of one ``genre``): one statement."""
    stmt = sql.SQL("""
        SELECT i.id, i.title, i.genre, -(i.vector <#> u.vector) AS score
        FROM {items} i CROSS JOIN (SELECT vector FROM {users} WHERE id = %(u)s) u
        WHERE NOT EXISTS (SELECT 1 FROM {ratings} r
                          WHERE r.user_id = %(u)s AND r.item_id = i.id)
          AND (%(g)s::text IS NULL OR i.genre = %(g)s)
        ORDER BY i.vector <#> u.vector, i.id LIMIT %(k)s""").format(
        items=sql.Identifier(client.schema, name),
        users=sql.Identifier(client.schema, f"{name}_users"), ratings=_ratings(client, name))
    with client.connection() as conn:
        rows = conn.execute(stmt, {"u": user, "k": k, "g": genre}).fetchall()
    return [Rec(int(a), b, c, float(d)) for a, b, c, d in rows]


def popular(client: vecpg.Client, name: str, user: int, k: int = 10) -> list[int]:
    """Baseline: the most-rated items the user has not rated, same exclusion."""
    r = _ratings(client, name)
    stmt = sql.SQL("""
        SELECT item_id FROM {r} x
        WHERE NOT EXISTS (SELECT 1 FROM {r} s WHERE s.user_id = %(u)s AND s.item_id = x.item_id)
        GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT %(k)s""").format(r=r)
    with client.connection() as conn:
        return [int(row[0]) for row in conn.execute(stmt, {"u": user, "k": k}).fetchall()]
