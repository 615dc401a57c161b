"""The LangChain vector store (vecpg.integrations.langchain) against a real Postgres:
langchain-tests' standard VectorStoreIntegrationTests, then filters, scores, MMR and the
hybrid search of our own."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import vecpg
from vecpg.integrations.langchain import VecpgRetriever, VecpgVectorStore


# The standard suite's async tests are plain `async def`: pytest-asyncio (a dependency of
# langchain-tests) runs them with the asyncio mark, which the sync tests shrug off.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test .* is marked with '@pytest.mark.asyncio'")
class TestVecpgStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, client: vecpg.Client) -> Iterator[VecpgVectorStore]:
        """An empty store in the test's fresh schema (dropped with it)."""
        yield VecpgVectorStore(client, "lc_std", self.get_embeddings())


class FixedEmbeddings(Embeddings):
    """Texts of the form "x,y,z" embed as that vector; anything else as a fake one."""

    def __init__(self, size: int = 3) -> None:
        self.fake = DeterministicFakeEmbedding(size=size)

    def _one(self, text: str) -> list[float]:
        try:
            return [float(x) for x in text.split(",")]
        except ValueError:
            return self.fake.embed_query(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def _docs(store: VecpgVectorStore) -> list[str]:
    return store.add_texts(["1,0,0", "0,1,0", "0,0,1", "1,1,0"],
                           [{"name": "O'Brien \"the\" \\ one", "n": 1, "tag": "a"},
                            {"name": "plain", "n": 2, "tag": "b"},
                            {"name": "x", "n": 3, "tag": "a", "extra": None},
                            {"name": "y", "n": 4, "tag": "b", "nested": {"k": [1, 2]}}],
                           ids=["a", "b", "c", "d"])


def test_dict_filter_binds_values_with_quotes(client: vecpg.Client) -> None:
    store = VecpgVectorStore(client, "lc_f", FixedEmbeddings())
    _docs(store)
    sent: list[tuple[object, object]] = []
    client.tracer = lambda q, p: sent.append((q, p))
    got = store.similarity_search("1,0,0", k=4, filter={"name": "O'Brien \"the\" \\ one"})
    client.tracer = None
    assert [d.id for d in got] == ["a"]
    assert got[0].metadata == {"name": "O'Brien \"the\" \\ one", "n": 1, "tag": "a"}
    assert not any("O'Brien" in str(q) for q, _ in sent)  # bound, not in the SQL text
    both = store.similarity_search("1,0,0", k=4, filter={"tag": "b", "n": 4})
    assert [d.id for d in both] == ["d"]
    assert [d.id for d in store.similarity_search("1,0,0", k=4, filter={"n": [2, 3]})] == [
        "b", "c"]
    assert store.similarity_search("1,0,0", k=4, filter={"tag": "zzz"}) == []
    assert {d.id for d in store.similarity_search("1,0,0", filter={})} == {"a", "b", "c", "d"}
    with pytest.raises(TypeError):
        store.similarity_search("1,0,0", filter={"nested": {"k": 1}})
    with pytest.raises(ValueError, match="quotes"):
        store.similarity_search("1,0,0", filter={'we"ird': 1})


def test_expression_filters_and_delete_by_filter(client: vecpg.Client) -> None:
    store = VecpgVectorStore(client, "lc_e", FixedEmbeddings())
    _docs(store)
    got = store.similarity_search("0,0,1", k=4, filter="n >= {lo}", filter_params={"lo": 3})
    assert [d.id for d in got] == ["c", "d"]
    assert [d.id for d in store.similarity_search("0,0,1", k=4, expr='tag == "b"')] == ["b",
                                                                                       "d"]
    with pytest.raises(ValueError, match="not both"):
        store.similarity_search("0,0,1", filter="n > 1", expr="n > 2")
    with pytest.raises(TypeError, match="unexpected"):
        store.similarity_search("0,0,1", filtr="n > 1")
    store.delete(filter={"tag": "a"})
    assert sorted(d.id or "" for d in store.get_by_ids(["a", "b", "c", "d"])) == ["b", "d"]
    with pytest.raises(ValueError, match="ids or a filter"):
        store.delete()


def test_scores_and_relevance_per_metric(client: vecpg.Client) -> None:
    q = np.array([1.0, 0.2, 0.0])
    vecs = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=float)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    qu = q / np.linalg.norm(q)
    for metric in ("COSINE", "IP", "L2"):
        store = VecpgVectorStore(client, f"lc_{metric.lower()}", FixedEmbeddings(),
                                 metric=metric)
        store.add_texts([",".join(map(str, v)) for v in unit], ids=list("abcd"))
        got = store.similarity_search_with_score(",".join(map(str, qu)), k=4)
        cos = unit @ qu
        want = {"COSINE": cos, "IP": cos, "L2": ((unit - qu) ** 2).sum(axis=1)}[metric]
        order = np.argsort(-cos, kind="stable")
        assert [d.id for d, _ in got] == [list("abcd")[i] for i in order]
        np.testing.assert_allclose([s for _, s in got], want[order], rtol=1e-5, atol=1e-6)
        rel = store.similarity_search_with_relevance_scores(",".join(map(str, qu)), k=4)
        np.testing.assert_allclose([s for _, s in rel], (1 + cos[order]) / 2, atol=1e-5)
        high = store.similarity_search_with_relevance_scores(
            ",".join(map(str, qu)), k=4, score_threshold=0.9)
        assert [d.id for d, _ in high] == [d.id for d, s in rel if s >= 0.9]


def _mmr_reference(q: np.ndarray, cands: np.ndarray, lam: float, k: int) -> list[int]:
    """Maximal marginal relevance with cosine similarities, greedily."""
    def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T) / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1))
    rel = cos(q[None, :], cands)[0]
    picked = [int(np.argmax(rel))]
    while len(picked) < min(k, len(cands)):
        red = cos(cands, cands[picked]).max(axis=1)
        score = lam * rel - (1 - lam) * red
        score[picked] = -np.inf
        picked.append(int(np.argmax(score)))
    return picked


def test_mmr_matches_a_numpy_reference(client: vecpg.Client) -> None:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(60, 8))
    vecs[1:6] = vecs[0] + 0.01 * rng.normal(size=(5, 8))  # near-duplicates MMR should skip
    store = VecpgVectorStore(client, "lc_mmr", FixedEmbeddings(8))
    ids = store.add_texts([",".join(repr(float(x)) for x in v) for v in vecs])
    q = vecs[0] + 0.1 * rng.normal(size=8)
    for lam in (0.0, 0.3, 0.5, 1.0):
        got = store.max_marginal_relevance_search(",".join(map(repr, q.tolist())), k=5,
                                                  fetch_k=20, lambda_mult=lam)
        cosq = (vecs @ q) / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(q))
        fetched = np.argsort(-cosq)[:20]
        want = [ids[fetched[i]] for i in _mmr_reference(q, vecs[fetched], lam, 5)]
        assert [d.id for d in got] == want
    by_vec = store.max_marginal_relevance_search_by_vector(q.tolist(), k=5, fetch_k=20,
                                                           lambda_mult=0.3)
    assert len({d.id for d in by_vec}) == 5
    assert store.max_marginal_relevance_search("words", k=3, filter={"nope": 1}) == []


def test_from_texts_reopen_declared_fields_and_retriever(client: vecpg.Client) -> None:
    emb = FixedEmbeddings()
    store = VecpgVectorStore.from_documents(
        [Document("1,0,0", metadata={"year": 2001, "src": "x"}, id="one"),
         Document("0,1,0", metadata={"src": "y"})],
        emb, client_or_dsn=client, collection_name="lc_decl",
        metadata_fields={"year": "INT64"}, metric="L2",
        index_params={"index_type": "HNSW", "params": {"M": 8, "efConstruction": 32}})
    again = VecpgVectorStore(client, "lc_decl", emb, metric="L2")
    assert again.metadata_fields == {"year": vecpg.DataType.INT64} and again.dimension == 3
    docs = again.similarity_search("1,0,0", k=2)
    assert docs[0] == Document("1,0,0", metadata={"year": 2001, "src": "x"}, id="one")
    assert docs[1].metadata == {"src": "y"}  # the unset typed column is left out
    assert [d.id for d in again.similarity_search("0,1,0", filter={"year": 2001})] == ["one"]
    assert client.list_indexes("lc_decl")
    with pytest.raises(ValueError, match="metric"):
        VecpgVectorStore(client, "lc_decl", emb)  # COSINE on an L2 collection
    with pytest.raises(ValueError, match="field of the store"):
        store.add_texts(["1,1,1"], [{"text": "clash"}])
    r = again.as_retriever(search_type="mmr", search_kwargs={"k": 1, "fetch_k": 2})
    assert isinstance(r, VecpgRetriever)
    assert [d.id for d in r.invoke("1,0,0")] == ["one"]


def test_hybrid_search_finds_words(client: vecpg.Client) -> None:
    texts = ["the cat sat on the mat", "dogs chase cats", "quantum chromodynamics",
             "a recipe for bread", "stock market news"]
    store = VecpgVectorStore(client, "lc_h", DeterministicFakeEmbedding(size=16),
                             full_text=True)
    store.add_texts(texts, [{"i": i} for i in range(len(texts))])
    got = store.hybrid_search_with_score("quantum chromodynamics", k=2)
    assert got[0][0].page_content == "quantum chromodynamics"
    assert got[0][1] >= got[1][1]
    r = store.as_retriever(search_type="hybrid", search_kwargs={"k": 1, "filter": {"i": 3}})
    assert [d.page_content for d in r.invoke("bread")] == ["a recipe for bread"]
    assert VecpgVectorStore(client, "lc_h", DeterministicFakeEmbedding(size=16)).full_text
    plain = VecpgVectorStore(client, "lc_plain", DeterministicFakeEmbedding(size=16))
    with pytest.raises(ValueError, match="full_text"):
        plain.hybrid_search("x")


async def _async_roundtrip(store: VecpgVectorStore) -> list[Document]:
    await store.aadd_texts(["1,0,0", "0,1,0"], ids=["p", "q"])
    return await store.as_retriever(search_type="hybrid",
                                    search_kwargs={"k": 1}).ainvoke("0,1,0")


def test_async_hybrid_retriever(client: vecpg.Client) -> None:
    import asyncio

    store = VecpgVectorStore(client, "lc_async", FixedEmbeddings(), full_text=True)
    assert [d.id for d in asyncio.run(_async_roundtrip(store))] == ["q"]


def test_store_with_its_own_client(dsn: str, schema_name: str) -> None:
    with VecpgVectorStore(dsn, "lc_own", FixedEmbeddings(), schema=schema_name,
                          dimension=3) as store:
        assert store.client.has_collection("lc_own")
        assert store.similarity_search("1,0,0") == []
        store.client.drop_collection("lc_own")


def test_example_rag_retriever(client: vecpg.Client) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package
    from examples.langchain.rag import build_store, noun_recall, prompt
    from vecpg.datasets import load_demo_sample

    ds = load_demo_sample()
    store = build_store(client, ds)
    assert noun_recall(store, ds) == 1.0  # exact search: the filtered truth, all 100 queries
    text = prompt(store, str(ds.attrs["test_text"][0]), k=3, pos="v")
    assert text.count("\n- [v") == 3 and text.startswith("Answer from this context only.\n- [v")
