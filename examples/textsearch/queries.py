"""Questions with known answers, made from the data itself (known-item search).

For a seeded random choice of synsets, a query is ``KEYWORDS`` distinct content words of
the synset's *definition* (its gloss without the quoted examples), never a word of its
lemma, in shuffled order: the words someone might type who remembers what a thing is but
not what it is called ("charge quark electron mass" -> ``down quark``). The one relevant
document is that synset. Two query sets share those words:

* ``keywords``: the words as they are;
* ``typos``: the same words with ``TYPOS`` of them misspelled by one edit each (an inner
  letter dropped, doubled, swapped with its neighbour or replaced by a keyboard neighbour).

Synsets whose definition has fewer than ``MIN_WORDS`` content words are never chosen, so a
query is always a strict subset of the definition. Other synsets can fit the words as well
(WordNet has near-identical glosses), which costs every method alike.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .corpus import Synset

KEYWORDS = 4
TYPOS = 2
MIN_WORDS = 6
SEED = 20261201

STOP_WORDS = frozenset([
    "a", "an", "and", "any", "are", "as", "at", "be", "been", "being", "but", "by", "can", "could",
    "did", "do", "does", "for", "from", "had", "has", "have", "her", "his", "how", "if", "in",
    "into", "is", "it", "its", "may", "more", "most", "much", "not", "of", "off", "on", "one",
    "only", "or", "other", "our", "out", "over", "own", "same", "she", "so", "some", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "upon", "very", "was", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "within", "without", "would",
    "you", "your", "used", "especially", "usually", "something", "someone", "etc"
])

_WORD = re.compile(r"[a-z]+")
_NEIGHBOURS = dict(zip("qwertyuiopasdfghjklzxcvbnm", "wertyuioqsdfghjkazxcvbnml"))


@dataclass(frozen=True)
class Query:
    answer: int     # the relevant synset's id
    text: str


def content_words(s: Synset) -> list[str]:
    """The distinct non-stop words (3+ letters) of the definition that are not lemma words,
    in order of first appearance."""
    lemma = set(_WORD.findall(s.lemma.lower()))
    seen: dict[str, None] = {}
    for w in _WORD.findall(s.definition.lower()):
        if len(w) >= 3 and w not in STOP_WORDS and w not in lemma:
            seen.setdefault(w, None)
    return list(seen)


def misspell(word: str, rng: random.Random) -> str:
    """``word`` with one edit at an inner position (the first letter is kept)."""
    i = rng.randrange(1, len(word) - 1) if len(word) > 2 else len(word) - 1
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2 and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + _NEIGHBOURS.get(word[i], "e") + word[i + 1:]


def make_queries(synsets: Sequence[Synset], n: int, seed: int = SEED
                 ) -> dict[str, list[Query]]:
    """``n`` queries per set (``keywords``, ``typos``) for the same ``n`` synsets."""
    rng = random.Random(seed)
    eligible = [s for s in synsets if len(content_words(s)) >= MIN_WORDS]
    chosen = rng.sample(eligible, min(n, len(eligible)))
    out: dict[str, list[Query]] = {"keywords": [], "typos": []}
    for s in chosen:
        words = rng.sample(content_words(s), KEYWORDS)
        out["keywords"].append(Query(s.id, " ".join(words)))
        bad = set(rng.sample(range(KEYWORDS), TYPOS))
        out["typos"].append(Query(s.id, " ".join(misspell(w, rng) if i in bad else w
                                                 for i, w in enumerate(words))))
    return out
