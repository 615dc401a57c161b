"""examples/dna on a small generated set: k-mer counts are right, the one-statement
k-NN vote in SQL agrees with an exact numpy vote, and it classifies held-out sequences."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.dna import classify
from examples.dna.sequences import generate, kmer_counts


def test_kmer_counts() -> None:
    v = kmer_counts(["ACGTACGT", "aaaa"], k=2)
    assert v.shape == (2, 16)
    cols = ["".join(p) for p in [(a, b) for a in "acgt" for b in "acgt"]]
    assert {cols[i]: int(c) for i, c in enumerate(v[0]) if c} == {"ac": 2, "cg": 2, "gt": 2,
                                                                  "ta": 1}
    assert v[1][cols.index("aa")] == 3 and v[1].sum() == 3
    seqs = generate(3, 5)
    assert generate(3, 5) == seqs  # seeded
    c = kmer_counts([s.seq for s in seqs], k=4)
    assert (c.sum(axis=1) == [len(s.seq) - 3 for s in seqs]).all()


def test_vote_equals_numpy_and_classifies(dsn: str) -> None:
    seqs = generate(6, 30)
    test, train = seqs[:40], seqs[40:]
    name = "dna_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn) as client:
        classify.create(client, name, train, k=4, hnsw=False)  # exact, to compare
        try:
            assert client.count(name) == len(train)
            q = kmer_counts([s.seq for s in test], 4)
            got = classify.classify(client, name, q, neighbours=5)
        finally:
            classify.drop(client, name)
    x = kmer_counts([s.seq for s in train], 4)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    fam = np.array([s.family for s in train])
    ref = []
    for row in qn:
        d = 1 - x @ row
        nn = np.argsort(d, kind="stable")[:5]
        votes = {f: (-(fam[nn] == f).sum(), d[nn][fam[nn] == f].min(), f) for f in set(fam[nn])}
        ref.append(min(votes.values())[2])
    pred = np.array([g[0] for g in got])
    assert np.mean(pred == np.array(ref)) >= 0.95  # a float near-tie may break either way
    assert all(1 <= g[2] <= 5 and g[1] == f"family {g[0]}" for g in got)
    truth = np.array([s.family for s in test])
    assert np.mean(pred == truth) >= 0.8
