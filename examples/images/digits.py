"""Digits in vecpg: the images (8x8 pixels, label) in an ordinary table, their embeddings
in a collection, and search by example image joined back to the pixels in one query.

    <name>          id, label, embedding vector(d)       (collection, L2)
    <name>_images   id, label, pixels bytea (64 bytes)   (table)

Embedding: PCA of the pixels (fit on the stored images only), or the raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psycopg import sql
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

import vecpg
from vecpg import DataType


@dataclass
class Digits:
    images: np.ndarray   # (n, 8, 8) uint8, 0..16
    labels: np.ndarray   # (n,) int


def load(limit: int | None = None) -> Digits:
    """scikit-learn's copy of the UCI handwritten digits (1,797 images), in file order."""
    d = load_digits()
    n = len(d.target) if limit is None else min(limit, len(d.target))
    return Digits(d.images[:n].astype(np.uint8), d.target[:n].astype(np.int64))


class Embedder:
    """Pixels -> vectors: PCA with ``dims`` components fit on ``train``, or (``dims=0``)
    the 64 raw pixels scaled to [0, 1]."""

    def __init__(self, train: np.ndarray, dims: int = 24) -> None:
        self.pca = PCA(n_components=dims, random_state=0).fit(_flat(train)) if dims else None

    @property
    def dim(self) -> int:
        return int(self.pca.n_components_) if self.pca is not None else 64

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = _flat(images)
        return (self.pca.transform(x) if self.pca is not None else x).astype(np.float32)


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 16.0


def _images(client: vecpg.Client, name: str) -> sql.Identifier:
    return sql.Identifier(client.schema, f"{name}_images")


def drop(client: vecpg.Client, name: str) -> None:
    client.drop_collection(name)
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_images(client, name)))


def create(client: vecpg.Client, name: str, ids: np.ndarray, data: Digits,
           vectors: np.ndarray, hnsw: bool = True) -> None:
    """(Re)create the collection (ids, labels, vectors) and the images table."""
    drop(client, name)
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, label smallint NOT NULL, "
                             "pixels bytea NOT NULL)").format(_images(client, name)))
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(
                _images(client, name))) as cp:
            for i, img, lab in zip(ids, data.images, data.labels):
                cp.write_row((int(i), int(lab), img.tobytes()))
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("label", DataType.INT16)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
    client.create_collection(name, schema=schema, metric_type="L2")
    client.insert(name, {"id": ids, "label": data.labels.astype(np.int16), "embedding": vectors})
    if hnsw:
        client.create_index(name, field_name="embedding", index_type="HNSW", metric_type="L2",
                            params={"M": 16, "efConstruction": 64})


def precision_at_k(client: vecpg.Client, name: str, vectors: np.ndarray, labels: np.ndarray,
                   k: int = 10) -> float:
    """Mean share of each query's ``k`` nearest stored images that show the same digit
    (vecpg ``search``, all queries in one call)."""
    hits = client.search(name, vectors, limit=k, output_fields=["label"])
    same = [np.mean([h.entity["label"] == lab for h in row]) for row, lab in zip(hits, labels)]
    return float(np.mean(same))


@dataclass
class Neighbour:
    id: int
    label: int
    distance: float
    image: np.ndarray   # (8, 8) uint8


def search_by_image(client: vecpg.Client, name: str, vector: np.ndarray,
                    k: int = 8) -> list[Neighbour]:
    """The ``k`` nearest stored images with their pixels: one SQL join of the vector
    search with the images table."""
    stmt = sql.SQL("""
        SELECT c.id, i.label, c.embedding <-> %s AS d, i.pixels
        FROM {coll} c JOIN {img} i ON i.id = c.id
        ORDER BY c.embedding <-> %s LIMIT %s""").format(
        coll=sql.Identifier(client.schema, name), img=_images(client, name))
    from pgvector import Vector

    v = Vector(vector)
    with client.connection() as conn:
        rows = conn.execute(stmt, (v, v, k)).fetchall()
    return [Neighbour(int(r[0]), int(r[1]), float(r[2]),
                      np.frombuffer(r[3], dtype=np.uint8).reshape(8, 8)) for r in rows]


def draw(queries: list[tuple[np.ndarray, int]], results: list[list[Neighbour]],
         path: str) -> None:
    """A PNG grid: one row per query (its image first), then its neighbours, framed green
    when they show the same digit and red when not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 1 + max(len(r) for r in results)
    fig, axes = plt.subplots(len(queries), cols, figsize=(1.2 * cols, 1.35 * len(queries)),
                             squeeze=False)
    for row, ((img, lab), nbrs) in enumerate(zip(queries, results)):
        cells = [(img, f"query: {lab}", "black")] + [
            (n.image, f"{n.label}  d={n.distance:.2f}", "green" if n.label == lab else "red")
            for n in nbrs]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(cells):
                ax.axis("off")
                continue
            pic, title, colour = cells[col]
            ax.imshow(pic, cmap="gray_r", vmin=0, vmax=16)
            ax.set_title(title, fontsize=7, color=colour)
            for s in ax.spines.values():
                s.set_color(colour)
                s.set_linewidth(2.5 if col else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
