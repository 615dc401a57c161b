"""The RDKit side: the NCI molecules shipped with RDKit, fingerprints as packed bytes,
molecular properties, and RDKit's exact substructure match (the ground truth).

Two fingerprints per molecule, for two jobs:

* Morgan (radius 2, 2048 bits) for similarity: circular environments, the usual
  Tanimoto fingerprint. Not for screening: a substructure cut out of a molecule has atoms
  at its edge whose environments differ from the same atoms inside the molecule, so its
  Morgan bits need not be a subset of the molecule's.
* RDKit's pattern fingerprint (2048 bits) for substructure screening: built from
  subgraphs, designed so that if A is a substructure of B then every bit of A is set in B.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, DataStructs, RDConfig, RDLogger
from rdkit.Chem import Descriptors, rdFingerprintGenerator

FP_BITS = 2048
NCI_FILE = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")

_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FP_BITS)


@dataclass
class Molecule:
    """One parsed molecule: its NSC number (NCI's compound id), SMILES and RDKit Mol."""

    nsc: int
    smiles: str
    mol: Chem.Mol


def load_nci(limit: int | None = None) -> tuple[list[Molecule], int]:
    """The molecules of RDKit's ``Data/NCI/first_5K.smi`` (SMILES, tab, NSC number), in
    file order, at most ``limit`` of the lines; returns them and how many lines RDKit
    could not parse (skipped)."""
    RDLogger.DisableLog("rdApp.*")  # the file has a few invalid valences; we count them
    out: list[Molecule] = []
    bad = 0
    with open(NCI_FILE, encoding="ascii") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            smiles, nsc = line.split()[:2]
            mol = Chem.MolFromSmiles(smiles)
            if mol is None:
                bad += 1
                continue
            out.append(Molecule(int(nsc), smiles, mol))
    return out, bad


def morgan(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """Morgan fingerprint, radius 2, 2048 bits (the similarity fingerprint)."""
    return _MORGAN.GetFingerprint(mol)


def pattern(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """RDKit pattern fingerprint, 2048 bits (the substructure-screening fingerprint)."""
    return Chem.PatternFingerprint(mol, fpSize=FP_BITS)


def packed(fps: Sequence[DataStructs.ExplicitBitVect]) -> np.ndarray:
    """Fingerprints as an (n, 256) uint8 array, bit 0 as the most significant bit of byte 0:
    the layout vecpg (and Milvus) take for a BINARY_VECTOR, so RDKit's bit i is bit i of
    the Postgres ``bit(2048)``."""
    bits = np.zeros((len(fps), FP_BITS), dtype=np.uint8)
    row = np.zeros(FP_BITS, dtype=np.uint8)
    for i, fp in enumerate(fps):
        DataStructs.ConvertToNumpyArray(fp, row)
        bits[i] = row
    return np.packbits(bits, axis=1)


def properties(mol: Chem.Mol) -> tuple[float, float, float, int]:
    """Molecular weight, Crippen logP, topological polar surface area, heavy atoms."""
    return (Descriptors.MolWt(mol), Descriptors.MolLogP(mol), Descriptors.TPSA(mol),
            mol.GetNumHeavyAtoms())


def substructure_matches(query: Chem.Mol, mols: Sequence[Molecule]) -> set[int]:
    """NSC numbers of the molecules that contain ``query`` (RDKit's exact match)."""
    return {m.nsc for m in mols if m.mol.HasSubstructMatch(query)}


def superstructure_matches(query: Chem.Mol, mols: Sequence[Molecule]) -> set[int]:
    """NSC numbers of the molecules contained in ``query`` (RDKit's exact match)."""
    return {m.nsc for m in mols if query.HasSubstructMatch(m.mol)}
