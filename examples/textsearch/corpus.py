"""The documents: WordNet 3.0 synsets as "lemma: gloss" texts with their all-MiniLM-L6-v2
vectors, from vecpg's dev dataset or from the sample packaged with vecpg.

Two sources, one shape:

* ``load_synsets()`` reads the 55,000 ``train`` rows of
  ``../shared/datasets/wordnet-minilm-384-angular.hdf5`` (the repository's sibling
  ``shared/`` folder, as the tests find it; needs h5py);
* ``load_synsets(sample=True)`` reads the 5,000-row slice of the same rows shipped in
  ``vecpg/data/wordnet_sample.npz`` (numpy only; see ``vecpg/data/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecpg.datasets import AnnDataset, load_demo_sample, load_hdf5

DEV_DATASET = Path(__file__).resolve().parents[2].parent / (
    "shared/datasets/wordnet-minilm-384-angular.hdf5")
POS_NAMES = ("n", "v", "a", "s", "r")  # the datasets' pos codes 0-4


@dataclass(frozen=True)
class Synset:
    id: int            # row number in the source, used as the primary key everywhere
    lemma: str
    gloss: str         # the definition, then any quoted examples ("...; \"an example\"")
    pos: str           # n, v, a, s (adjective satellite), r
    lexfile: str       # lexicographer file, e.g. "noun.animal"
    wn_offset: int     # WordNet 3.0 synset offset (unique within a part of speech)

    @property
    def text(self) -> str:
        """The indexed document, exactly the text the stored vector embeds."""
        return f"{self.lemma}: {self.gloss}"

    @property
    def definition(self) -> str:
        """The gloss without its quoted usage examples."""
        return self.gloss.split('; "')[0].strip()


@dataclass
class Corpus:
    synsets: list[Synset]
    embeddings: np.ndarray   # (n, 384) float32, unit length; row i embeds synsets[i].text
    lexnames: list[str]      # lexicographer file names, indexed by their WordNet number
    source: str


def load_synsets(sample: bool = False, limit: int | None = None,
                 path: Path | None = None) -> Corpus:
    """The synsets with their vectors: the dev dataset's 55,000 (``path`` overrides where),
    or the packaged 5,000-row sample; only the first ``limit`` rows if given (the rows are
    shuffled in both, so a prefix is a random slice)."""
    if sample:
        ds, source = load_demo_sample(), "vecpg/data/wordnet_sample.npz"
    else:
        path = path or DEV_DATASET
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: put vecpg's shared/ folder beside the "
                                    "repository, or run with --sample")
        ds, source = load_hdf5(path), str(path)
    return _corpus(ds, source, limit)


def _corpus(ds: AnnDataset, source: str, limit: int | None) -> Corpus:
    n = len(ds.train) if limit is None else min(limit, len(ds.train))
    lexnames = [str(x) for x in ds.attrs["lexnames"]]
    synsets = []
    for i in range(n):
        lemma, _, gloss = str(ds.attrs["train_text"][i]).partition(": ")
        synsets.append(Synset(i, lemma, gloss, POS_NAMES[int(ds.attrs["train_pos"][i])],
                              lexnames[int(ds.attrs["train_lexfile"][i])],
                              int(ds.attrs["train_offset"][i])))
    return Corpus(synsets, np.ascontiguousarray(ds.train[:n], dtype=np.float32), lexnames,
                  source)
