"""The sequences (GENERATED, not real: see README.md) and their k-mer count vectors.

No registry package we found ships a labelled set of real DNA sequences (Biopython's
wheel ships no sequence files; scikit-bio's only a few small test files), so the data is
a clearly-labelled simulation of gene families: each family is a random ancestor
sequence; its members are descendants with point substitutions, small insertions and
deletions, and random start/end, at a per-family divergence. Seeded: the same arguments
give the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

BASES = np.array(list("ACGT"))


@dataclass(frozen=True)
class Sequence:
    family: int
    seq: str


def _mutate(rng: np.random.Generator, anc: np.ndarray, sub: float, indel: float) -> str:
    s = anc.copy()
    hit = rng.random(len(s)) < sub
    s[hit] = rng.choice(BASES, int(hit.sum()))
    out: list[str] = []
    for b in s:
        r = rng.random()
        if r < indel / 2:
            continue                                   # deletion
        out.append(b)
        if r > 1 - indel / 2:
            out.extend(rng.choice(BASES, int(rng.integers(1, 4))))  # insertion
    # a random fragment of at least 70% of the gene
    n = len(out)
    keep = int(n * rng.uniform(0.7, 1.0))
    start = int(rng.integers(0, n - keep + 1))
    return "".join(out[start:start + keep])


def generate(families: int = 8, per_family: int = 150, length: int = 600,
             seed: int = 20261125) -> list[Sequence]:
    """``families`` x ``per_family`` sequences; family ``f``'s members differ from its
    ancestor by 15% to 35% substitutions (by family) and 2% indels. Two families share
    half of their ancestor (a common domain), which makes them harder to tell apart."""
    rng = np.random.default_rng(seed)
    ancestors = [rng.choice(BASES, length) for _ in range(families)]
    if families >= 2:
        ancestors[1][: length // 2] = ancestors[0][: length // 2]
    out = []
    for f, anc in enumerate(ancestors):
        sub = 0.15 + 0.20 * f / max(families - 1, 1)
        out += [Sequence(f, _mutate(rng, anc, sub, 0.02)) for _ in range(per_family)]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def kmer_vectorizer(k: int = 5) -> CountVectorizer:
    """Counts of every k-mer over A, C, G, T (4**k columns, fixed order)."""
    vocab = ["".join(p) for p in np.array(np.meshgrid(*[list("acgt")] * k, indexing="ij"))
             .reshape(k, -1).T]
    return CountVectorizer(analyzer="char", ngram_range=(k, k), vocabulary=vocab,
                           lowercase=True)


def kmer_counts(seqs: list[str], k: int = 5) -> np.ndarray:
    """(n, 4**k) float32 k-mer counts."""
    return kmer_vectorizer(k).transform(seqs).toarray().astype(np.float32)
