"""The Q&A pairs: the English conversations of PyPI ``chatterbot-corpus`` (BSD licence),
one YAML file per category. The first line of each exchange is taken as the question and
the next as its answer; one-character "questions" are skipped."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Pair:
    category: str
    question: str
    answer: str


def load_pairs(categories: list[str] | None = None) -> list[Pair]:
    """All (question, answer) pairs, in file order; only ``categories`` (file names without
    ``.yml``, e.g. ``"science"``) if given."""
    root = importlib.resources.files("chatterbot_corpus") / "data" / "english"
    pairs: list[Pair] = []
    for f in sorted(root.iterdir(), key=lambda p: p.name):
        cat = f.name.removesuffix(".yml")
        if not f.name.endswith(".yml") or (categories and cat not in categories):
            continue
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        for conv in doc.get("conversations") or []:
            turns = [str(t).strip() for t in conv]
            for i in range(0, len(turns) - 1, 2):  # turns alternate: question, answer
                # one trivia conversation spells a word letter by letter: not questions
                if len(turns[i]) > 1 and turns[i + 1]:
                    pairs.append(Pair(cat, turns[i], turns[i + 1]))
    return pairs
