"""The retrieval half of a RAG pipeline with LangChain on vecpg: WordNet glosses with their
stored all-MiniLM-L6-v2 vectors (vecpg's packaged sample, no model to download) in a
:class:`~vecpg.integrations.langchain.VecpgVectorStore`, a retriever with a metadata filter,
and the prompt an LLM would get.

    store = build_store(client)
    print(prompt(store, "dog: a domesticated carnivore", pos="n"))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

import vecpg
from vecpg.datasets import AnnDataset, load_demo_sample
from vecpg.integrations.langchain import VecpgVectorStore

COLLECTION = "lc_wordnet"
POS = ["n", "v", "a", "s", "r"]  # the sample's part-of-speech codes 0..4


class StoredEmbeddings(Embeddings):
    """The sample's own MiniLM vectors, looked up by text (its train and test texts only:
    there is no model here to embed anything else)."""

    def __init__(self, ds: AnnDataset) -> None:
        texts = [*ds.attrs["train_text"], *ds.attrs["test_text"]]
        vectors = np.concatenate([ds.train, ds.test])
        self._by_text = {str(t): v for t, v in zip(texts, vectors)}

    def _one(self, text: str) -> list[float]:
        try:
            return [float(x) for x in self._by_text[text]]
        except KeyError:
            raise KeyError(f"no stored vector for {text!r}: StoredEmbeddings knows only "
                           "the sample's texts") from None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def build_store(client: vecpg.Client, ds: AnnDataset | None = None) -> VecpgVectorStore:
    """The sample's 5,000 glosses, ids ``<pos><offset>``, metadata ``pos`` and ``lexfile``
    (a fresh collection each time)."""
    ds = ds if ds is not None else load_demo_sample()
    store = VecpgVectorStore(client, COLLECTION, StoredEmbeddings(ds), drop_old=True)
    lexnames = ds.attrs["lexnames"]
    pos, lex, off = ds.attrs["train_pos"], ds.attrs["train_lexfile"], ds.attrs["train_offset"]
    store.add_texts([str(t) for t in ds.attrs["train_text"]],
                    [{"pos": POS[p], "lexfile": str(lexnames[f])} for p, f in zip(pos, lex)],
                    ids=[f"{POS[p]}{o}" for p, o in zip(pos, off)])
    return store


def retrieve(store: VecpgVectorStore, question: str, k: int = 4,
             pos: str | None = None) -> list[Document]:
    """The ``k`` glosses closest to ``question`` (only those of part of speech ``pos``)."""
    kwargs: dict[str, object] = {"k": k}
    if pos is not None:
        kwargs["filter"] = {"pos": pos}
    return store.as_retriever(search_kwargs=kwargs).invoke(question)


def prompt(store: VecpgVectorStore, question: str, k: int = 4, pos: str | None = None) -> str:
    """The prompt an LLM would answer: the retrieved glosses, then the question."""
    context = "\n".join(f"- [{d.id}, {d.metadata['lexfile']}] {d.page_content}"
                        for d in retrieve(store, question, k, pos))
    return f"Answer from this context only.\n{context}\n\nQuestion: {question}\n"


def noun_recall(store: VecpgVectorStore, ds: AnnDataset, k: int = 10,
                queries: Sequence[int] | None = None) -> float:
    """recall@k of the noun-filtered retriever against the sample's exact top-k among nouns."""
    ids = [f"{POS[p]}{o}" for p, o in zip(ds.attrs["train_pos"], ds.attrs["train_offset"])]
    truth = ds.filters["pos_0"].neighbors
    found = 0
    rows = range(len(ds.test)) if queries is None else queries
    for q in rows:
        got = {d.id for d in retrieve(store, str(ds.attrs["test_text"][q]), k, pos="n")}
        found += len(got & {ids[i] for i in truth[q][:k]})
    return found / (k * len(rows))
