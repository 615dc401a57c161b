"""Molecular similarity and substructure search on RDKit's NCI sample, in vecpg.

    python -m examples.molecules            # all 4,999 lines of the file
    python -m examples.molecules --sample   # the first 500, in a few seconds
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from rdkit import Chem, DataStructs

import vecpg

from . import chem, store

SUBSTRUCTURE_QUERIES = [
    ("benzene ring", "c1ccccc1"),
    ("pyridine", "c1ccncc1"),
    ("naphthalene", "c1ccc2ccccc2c1"),
    ("carboxylic acid/ester", "C(=O)O"),
    ("nitro group (on C)", "C[N+](=O)[O-]"),
    ("sulfonamide", "S(=O)(=O)N"),
    ("chlorobenzene", "Clc1ccccc1"),
    ("trifluoromethyl", "C(F)(F)F"),
    ("steroid core", "C1CCC2C(C1)CCC1C2CCC2CCCC12"),
]
SUPERSTRUCTURE_QUERIES = [
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"),
    ("caffeine", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"),
    ("testosterone", "CC12CCC3C(CCC4=CC(=O)CCC34C)C1CCC2O"),
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.molecules", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--limit", type=int, help="read only the first N lines of the file")
    ap.add_argument("--sample", action="store_true", help="same as --limit 500")
    ap.add_argument("--collection", default="nci_molecules")
    ap.add_argument("--query", default="CC(=O)Oc1ccccc1C(=O)O",
                    help="SMILES for the similarity searches (default: aspirin)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--max-mol-wt", type=float, default=300.0)
    ap.add_argument("--timing-queries", type=int, default=50)
    args = ap.parse_args(argv)
    limit = 500 if args.sample and args.limit is None else args.limit

    t0 = time.perf_counter()
    mols, bad = chem.load_nci(limit)
    print(f"{len(mols)} molecules from {chem.NCI_FILE} ({bad} lines RDKit cannot parse, "
          f"skipped)")
    client = vecpg.connect(args.dsn)
    store.create(client, args.collection, mols)
    print(f"loaded into collection {args.collection!r} + table {args.collection}_props "
          f"in {time.perf_counter() - t0:.1f} s\n")

    query = Chem.MolFromSmiles(args.query)
    if query is None:
        raise SystemExit(f"RDKit cannot parse --query {args.query!r}")
    qfp = bytes(chem.packed([chem.morgan(query)])[0])

    print(f"Tanimoto top-{args.k} for {args.query} (Morgan r=2, 2048 bits; vecpg search, "
          "metric TANIMOTO):")
    for h in store.top_k(client, args.collection, qfp, args.k):
        print(f"  NSC {h.nsc:<6} {h.similarity:.3f}  {h.smiles}")

    hits = store.tanimoto_range(client, args.collection, qfp, args.threshold, args.max_mol_wt)
    lo, hi = store.tanimoto_bounds(store.popcount(qfp), args.threshold)
    in_bounds = client.count(args.collection, f"morgan_bits >= {lo} and morgan_bits <= {hi}")
    print(f"\nTanimoto >= {args.threshold} and mol. weight <= {args.max_mol_wt} "
          f"(one SQL join with {args.collection}_props): {len(hits)} molecules; the popcount "
          f"bound {lo}..{hi} left {in_bounds} of {len(mols)} rows to compare")
    api = store.tanimoto_range_search(client, args.collection, qfp, args.threshold)
    print(f"(the same threshold through search(radius=...), without the weight join: "
          f"{len(api)} molecules)")
    for r in hits[:10]:
        print(f"  NSC {r.nsc:<6} {r.similarity:.3f}  MW {r.mol_wt:6.1f}  TPSA {r.tpsa:5.1f}  "
              f"{r.smiles}")

    print("\nSubstructure search (pattern fingerprint screen in vecpg, RDKit confirms):")
    _structure_table(client, args.collection, mols, SUBSTRUCTURE_QUERIES, superstructure=False)
    print("\nSuperstructure search (molecules contained in the query):")
    _structure_table(client, args.collection, mols, SUPERSTRUCTURE_QUERIES, superstructure=True)

    _timing(client, args.collection, mols, args.k, args.timing_queries)
    client.close()


def _structure_table(client: vecpg.Client, name: str, mols: list[chem.Molecule],
                     queries: list[tuple[str, str]], *, superstructure: bool) -> None:
    print(f"  {'query':<22} {'popcount ok':>11} {'screen':>7} {'matches':>8} "
          f"{'RDKit scan':>10} {'screen ms':>9} {'scan ms':>8}")
    for label, smi in queries:
        q = Chem.MolFromSmiles(smi)
        t = time.perf_counter()
        res = store.structure_search(client, name, q, superstructure=superstructure)
        t_vec = time.perf_counter() - t
        t = time.perf_counter()
        truth = (chem.superstructure_matches(q, mols) if superstructure
                 else chem.substructure_matches(q, mols))
        t_scan = time.perf_counter() - t
        flag = "" if set(res.matches) == truth else "  MISMATCH"
        print(f"  {label:<22} {res.popcount_pass:>11} {len(res.candidates):>7} "
              f"{len(res.matches):>8} {len(truth):>10} {1000 * t_vec:>9.1f} "
              f"{1000 * t_scan:>8.1f}{flag}")


def _timing(client: vecpg.Client, name: str, mols: list[chem.Molecule], k: int,
            n_queries: int) -> None:
    fps = [chem.morgan(m.mol) for m in mols]
    packed = chem.packed(fps)
    picks = np.linspace(0, len(mols) - 1, num=min(n_queries, len(mols)), dtype=int)
    vec_t, rd_t, agree = [], [], 0
    for i in picks:
        t = time.perf_counter()
        got = store.top_k(client, name, bytes(packed[i]), k)
        vec_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        sims = np.array(DataStructs.BulkTanimotoSimilarity(fps[i], fps))
        best = np.argsort(-sims, kind="stable")[:k]
        rd_t.append(time.perf_counter() - t)
        # same similarities in the same order (ties may swap ids)
        agree += np.allclose([h.similarity for h in got], sims[best], rtol=0, atol=1e-12)
    print(f"\nTanimoto top-{k} over {len(mols)} molecules, {len(picks)} queries, median per "
          "query:")
    print(f"  vecpg search (exact scan in Postgres): {1000 * statistics.median(vec_t):7.2f} ms")
    print(f"  RDKit BulkTanimotoSimilarity + sort:   {1000 * statistics.median(rd_t):7.2f} ms "
          "(fingerprints already in Python memory)")
    print(f"  same top-{k} similarities: {agree} of {len(picks)} queries")


if __name__ == "__main__":
    main()
