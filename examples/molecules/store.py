"""The vecpg side: one collection of fingerprints, one ordinary table of properties, and
the searches.

Collection ``<name>`` (a table): ``id`` (the NSC number), ``smiles``, ``morgan`` and
``pattern`` (``bit(2048)``), and their popcounts ``morgan_bits`` / ``pattern_bits`` with
btree indexes. Plain table ``<name>_props``: molecular weight, logP, TPSA, heavy atoms,
keyed by the same id, created with ordinary SQL: the records and the vectors live in one
Postgres and are joined in one query.

Popcount bounds (why the two ``*_bits`` columns):

* substructure: if the query's bits are a subset of the row's, the row has at least as
  many bits, so only rows with ``pattern_bits >= popcount(query)`` need the bitwise test;
* superstructure: symmetrically ``pattern_bits <= popcount(query)``;
* Tanimoto >= t: T(a, b) <= min(|a|, |b|) / max(|a|, |b|), so only rows with
  ``t * |q| <= morgan_bits <= |q| / t`` can reach t (Swamidass and Baldi, 2007).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pgvector import Bit
from psycopg import sql
from rdkit import Chem

import vecpg
from vecpg import DataType

from . import chem

MAX_LIMIT = 16384  # vecpg's largest search limit


def props_table(client: vecpg.Client, name: str) -> sql.Identifier:
    """The ordinary table holding the molecules' properties."""
    return sql.Identifier(client.schema, f"{name}_props")


def drop(client: vecpg.Client, name: str) -> None:
    """Drop the collection and its properties table, if they exist."""
    with client.connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(props_table(client, name)))
    client.drop_collection(name)


def create(client: vecpg.Client, name: str, mols: Sequence[chem.Molecule]) -> None:
    """(Re)create collection ``name`` and table ``<name>_props`` holding ``mols``."""
    drop(client, name)
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)          # NSC number
    schema.add_field("smiles", DataType.VARCHAR, max_length=2000)
    schema.add_field("morgan", DataType.BINARY_VECTOR, dim=chem.FP_BITS)
    schema.add_field("pattern", DataType.BINARY_VECTOR, dim=chem.FP_BITS)
    schema.add_field("morgan_bits", DataType.INT32)
    schema.add_field("pattern_bits", DataType.INT32)
    client.create_collection(name, schema=schema, metric_type="TANIMOTO")

    morgan = chem.packed([chem.morgan(m.mol) for m in mols])
    pattern = chem.packed([chem.pattern(m.mol) for m in mols])
    client.insert(name, {
        "id": np.array([m.nsc for m in mols], dtype=np.int64),
        "smiles": [m.smiles for m in mols],
        "morgan": morgan,
        "pattern": pattern,
        "morgan_bits": popcounts(morgan),
        "pattern_bits": popcounts(pattern),
    })
    # BIN_FLAT (exact) indexes on the fingerprints: vecpg adds a btree on
    # vecpg.popcount(field) to each, which screens its range and structure searches
    client.create_index(name, field_name="morgan", index_type="BIN_FLAT", metric_type="TANIMOTO")
    client.create_index(name, field_name="pattern", index_type="BIN_FLAT",
                        metric_type="SUBSTRUCTURE")
    # btree indexes on the stored popcounts: the plain-SQL bounds become index range scans
    client.create_index(name, field_name="morgan_bits", index_type="STL_SORT")
    client.create_index(name, field_name="pattern_bits", index_type="STL_SORT")

    props = props_table(client, name)
    with client.connection() as conn, conn.transaction():
        conn.execute(sql.SQL(
            "CREATE TABLE {} (id bigint PRIMARY KEY, mol_wt double precision, "
            "logp double precision, tpsa double precision, heavy_atoms integer)").format(props))
        with conn.cursor() as cur, cur.copy(sql.SQL(
                "COPY {} (id, mol_wt, logp, tpsa, heavy_atoms) FROM STDIN").format(props)) as cp:
            for m in mols:
                cp.write_row((m.nsc, *chem.properties(m.mol)))
        conn.execute(sql.SQL("ANALYZE {}").format(props))
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(client.schema, name)))


def popcounts(packed: np.ndarray) -> np.ndarray:
    """Bits set per row of a packed (n, bytes) uint8 array."""
    return np.unpackbits(packed, axis=1).sum(axis=1).astype(np.int32)


@dataclass
class Hit:
    nsc: int
    similarity: float
    smiles: str


def top_k(client: vecpg.Client, name: str, query: bytes, k: int = 10) -> list[Hit]:
    """The ``k`` molecules most Tanimoto-similar to the Morgan fingerprint ``query``
    (vecpg ``search``, metric TANIMOTO, exact scan)."""
    hits = client.search(name, [query], limit=k, anns_field="morgan", output_fields=["smiles"],
                         search_params={"metric_type": "TANIMOTO", "params": {"exact": True}})
    return [Hit(h.id, 1.0 - h.distance, h.entity["smiles"]) for h in hits[0]]


@dataclass
class RangeHit:
    nsc: int
    similarity: float
    smiles: str
    mol_wt: float
    tpsa: float


def tanimoto_bounds(query_bits: int, threshold: float) -> tuple[int, int]:
    """Popcount range of the rows that can reach Tanimoto ``threshold`` (widened by a hair
    against rounding; the exact test follows anyway)."""
    lo = math.ceil(threshold * query_bits - 1e-9)
    hi = math.floor(query_bits / threshold + 1e-9) if threshold > 0 else 1 << 30
    return lo, hi


def tanimoto_range(client: vecpg.Client, name: str, query: bytes, threshold: float,
                   max_mol_wt: float | None = None) -> list[RangeHit]:
    """Every molecule with Tanimoto similarity >= ``threshold`` to ``query`` (Morgan),
    most similar first, joined with its properties (optionally only up to ``max_mol_wt``):
    one SQL statement, the popcount range served by the btree index."""
    if not 0 < threshold <= 1:
        raise vecpg.InvalidArgument(f"threshold must be in (0, 1], got {threshold!r}")
    lo, hi = tanimoto_bounds(popcount(query), threshold)
    stmt = sql.SQL(
        "SELECT m.id, vecpg.tanimoto(m.morgan, %(q)s) AS sim, m.smiles, p.mol_wt, p.tpsa "
        "FROM {coll} m JOIN {props} p ON p.id = m.id "
        "WHERE m.morgan_bits BETWEEN %(lo)s AND %(hi)s "
        "AND vecpg.tanimoto(m.morgan, %(q)s) >= %(t)s "
        "AND (%(mw)s::float8 IS NULL OR p.mol_wt <= %(mw)s) "
        "ORDER BY sim DESC, m.id").format(coll=sql.Identifier(client.schema, name),
                                          props=props_table(client, name))
    with client.connection() as conn:
        rows = conn.execute(stmt, {"q": Bit(query), "lo": lo, "hi": hi, "t": threshold,
                                   "mw": max_mol_wt}).fetchall()
    return [RangeHit(int(r[0]), float(r[1]), r[2], float(r[3]), float(r[4])) for r in rows]


def tanimoto_range_search(client: vecpg.Client, name: str, query: bytes,
                          threshold: float) -> list[Hit]:
    """The same threshold search through the API: Milvus range search, ``radius`` being a
    bound on the Tanimoto distance (``1 - similarity < radius``, strict, hence the hair
    added), screened by vecpg's popcount index before the exact test."""
    radius = 1.0 - threshold + 1e-12
    hits = client.search(name, [query], limit=MAX_LIMIT, anns_field="morgan",
                         output_fields=["smiles"],
                         search_params={"metric_type": "TANIMOTO",
                                        "params": {"radius": radius, "exact": True}})[0]
    return [Hit(h.id, 1.0 - h.distance, h.entity["smiles"]) for h in hits]


def popcount(fp: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(fp, dtype=np.uint8)).sum())


@dataclass
class StructureResult:
    """A substructure or superstructure search: the rows the popcount bound leaves, the
    rows the fingerprint screen passes, and those RDKit confirms."""

    popcount_pass: int
    candidates: list[int]
    matches: list[int]


def structure_search(client: vecpg.Client, name: str, query: Chem.Mol, *,
                     superstructure: bool = False) -> StructureResult:
    """Molecules containing ``query`` (or, with ``superstructure``, contained in it).

    The screen is vecpg's SUBSTRUCTURE / SUPERSTRUCTURE search on the pattern fingerprint
    with a popcount filter; RDKit's exact ``HasSubstructMatch`` confirms each candidate.
    """
    fp = bytes(chem.packed([chem.pattern(query)])[0])
    n = popcount(fp)
    bound = f"pattern_bits <= {n}" if superstructure else f"pattern_bits >= {n}"
    metric = "SUPERSTRUCTURE" if superstructure else "SUBSTRUCTURE"
    hits = client.search(name, [fp], limit=MAX_LIMIT, anns_field="pattern", filter=bound,
                         output_fields=["smiles"], search_params={"metric_type": metric})[0]
    if len(hits) == MAX_LIMIT:
        raise vecpg.InvalidArgument(f"more than {MAX_LIMIT} candidates; use SQL for this query")
    matches = []
    for h in hits:
        mol = Chem.MolFromSmiles(h.entity["smiles"])
        if mol is None:
            continue
        ok = query.HasSubstructMatch(mol) if superstructure else mol.HasSubstructMatch(query)
        if ok:
            matches.append(int(h.id))
    return StructureResult(client.count(name, bound), [int(h.id) for h in hits], matches)
