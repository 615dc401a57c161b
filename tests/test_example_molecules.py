"""examples/molecules on a 300-molecule sample of RDKit's NCI file: the fingerprint screen
never loses a true substructure match, the confirmed results equal RDKit's full scan, and
the Tanimoto searches equal a numpy reference."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from psycopg import sql
from rdkit import Chem, DataStructs

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.molecules import chem, store
from examples.molecules.__main__ import SUBSTRUCTURE_QUERIES, SUPERSTRUCTURE_QUERIES

N = 300


@pytest.fixture(scope="module")
def mols() -> list[chem.Molecule]:
    return chem.load_nci(N)[0]


@pytest.fixture
def loaded(dsn: str, mols: list[chem.Molecule]) -> Iterator[tuple[vecpg.Client, str]]:
    name = "mol_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn) as client:
        store.create(client, name, mols)
        yield client, name
        store.drop(client, name)


def _tanimoto(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Tanimoto similarity of packed fingerprint ``a`` with each packed row (numpy)."""
    both = np.unpackbits(rows & a, axis=1).sum(axis=1)
    either = np.unpackbits(rows | a, axis=1).sum(axis=1)
    return np.where(either > 0, both / np.maximum(either, 1), 0.0)


def test_bits_stored_in_rdkit_order(loaded: tuple[vecpg.Client, str],
                                    mols: list[chem.Molecule]) -> None:
    client, name = loaded
    m = mols[7]
    with client.connection() as conn:
        text = conn.execute(sql.SQL("SELECT morgan::text, pattern::text, morgan_bits FROM {} "
                                    "WHERE id = %s").format(sql.Identifier(name)),
                            (m.nsc,)).fetchone()
    assert text[0] == chem.morgan(m.mol).ToBitString()
    assert text[1] == chem.pattern(m.mol).ToBitString()
    assert text[2] == chem.morgan(m.mol).GetNumOnBits()


def test_substructure_and_superstructure_equal_rdkit(loaded: tuple[vecpg.Client, str],
                                                     mols: list[chem.Molecule]) -> None:
    client, name = loaded
    total_true = total_screened = 0
    for superstructure, queries in ((False, SUBSTRUCTURE_QUERIES), (True, SUPERSTRUCTURE_QUERIES)):
        for label, smi in queries:
            q = Chem.MolFromSmiles(smi)
            res = store.structure_search(client, name, q, superstructure=superstructure)
            truth = (chem.superstructure_matches(q, mols) if superstructure
                     else chem.substructure_matches(q, mols))
            assert truth <= set(res.candidates), f"{label}: the screen lost a true match"
            assert sorted(res.matches) == sorted(truth), label
            assert len(res.candidates) <= res.popcount_pass <= len(mols)
            total_true += len(truth)
            total_screened += len(res.candidates)
    # the sample exercises the screen: real matches, and candidates RDKit had to reject
    assert total_true > 100
    assert total_screened > total_true


def test_tanimoto_top_k_equals_reference(loaded: tuple[vecpg.Client, str],
                                         mols: list[chem.Molecule]) -> None:
    client, name = loaded
    fps = [chem.morgan(m.mol) for m in mols]
    packed = chem.packed(fps)
    ids = np.array([m.nsc for m in mols])
    k = 10
    for i in range(0, N, 37):
        got = store.top_k(client, name, bytes(packed[i]), k)
        ref = _tanimoto(packed[i], packed)
        assert np.allclose(ref, DataStructs.BulkTanimotoSimilarity(fps[i], fps), atol=1e-12)
        order = np.argsort(-ref, kind="stable")[:k]
        sims = np.array([h.similarity for h in got])
        assert np.allclose(sims, ref[order], rtol=0, atol=1e-12)
        assert got[0].nsc == mols[i].nsc or sims[0] == 1.0
        # ids agree wherever the similarity is not tied with the k-th
        strict = {int(ids[j]) for j in order if ref[j] > ref[order[-1]]}
        assert strict <= {h.nsc for h in got}


@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_tanimoto_range_equals_reference(loaded: tuple[vecpg.Client, str],
                                         mols: list[chem.Molecule], threshold: float) -> None:
    client, name = loaded
    packed = chem.packed([chem.morgan(m.mol) for m in mols])
    mw = np.array([chem.properties(m.mol)[0] for m in mols])
    ids = np.array([m.nsc for m in mols])
    found_any = False
    for i in range(0, N, 29):
        ref = _tanimoto(packed[i], packed)
        hits = store.tanimoto_range(client, name, bytes(packed[i]), threshold)
        assert {h.nsc for h in hits} == set(ids[ref >= threshold].tolist())
        api = store.tanimoto_range_search(client, name, bytes(packed[i]), threshold)
        assert [h.nsc for h in api] == [h.nsc for h in hits] or \
            {h.nsc for h in api} == {h.nsc for h in hits}  # equal similarities may swap
        assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
        light = store.tanimoto_range(client, name, bytes(packed[i]), threshold, max_mol_wt=250.0)
        assert {h.nsc for h in light} == set(ids[(ref >= threshold) & (mw <= 250.0)].tolist())
        found_any |= len(hits) > 1
    assert found_any
    with pytest.raises(vecpg.InvalidArgument):
        store.tanimoto_range(client, name, bytes(packed[0]), 0.0)
