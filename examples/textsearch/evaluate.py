"""Retrieval quality on queries with known answers: recall@k and MRR@k per retriever.

With one relevant document per query, recall@k is the share of queries whose answer is in
the top k, and MRR@k the mean of 1/rank of the answer (0 when it is not in the top k).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import vecpg

from . import store
from .queries import Query


@dataclass
class Quality:
    mode: str
    queries: int
    recall: float    # recall@k
    mrr: float       # MRR@k
    qps: float       # queries per second of the retrieval calls (vectors given)


def score(answers: Sequence[int], results: Sequence[Sequence[tuple[int, float]]], k: int = 10
          ) -> tuple[float, float]:
    """(recall@k, MRR@k) of ranked ``results`` against one ``answers[i]`` per query."""
    found, rr = 0, 0.0
    for answer, hits in zip(answers, results, strict=True):
        ids = [i for i, _ in hits[:k]]
        if answer in ids:
            found += 1
            rr += 1.0 / (ids.index(answer) + 1)
    n = max(len(answers), 1)
    return found / n, rr / n


def measure(client: vecpg.Client, name: str, queries: Sequence[Query], vectors: np.ndarray,
            k: int = 10, batch: int = 100) -> list[Quality]:
    """Every retriever of :data:`store.MODES` on ``queries`` (``vectors[i]`` embeds
    ``queries[i].text``), ``batch`` queries per call."""
    texts = [q.text for q in queries]
    answers = [q.answer for q in queries]
    out = []
    for mode in store.MODES:
        results: list[list[tuple[int, float]]] = []
        t0 = time.perf_counter()
        for lo in range(0, len(texts), batch):
            results += store.retrieve(client, name, mode, texts[lo:lo + batch],
                                      vectors[lo:lo + batch], k=k)
        elapsed = time.perf_counter() - t0
        recall, mrr = score(answers, results, k)
        out.append(Quality(mode, len(texts), recall, mrr, len(texts) / max(elapsed, 1e-9)))
    return out
