"""LangChain's ``VectorStore`` on a vecpg collection (needs ``langchain-core``).

    from langchain_core.embeddings import DeterministicFakeEmbedding
    from vecpg.integrations.langchain import VecpgVectorStore

    store = VecpgVectorStore(client, "docs", DeterministicFakeEmbedding(size=64))
    store.add_texts(["a cat", "a dog"], [{"kind": "pet"}, {"kind": "pet"}], ids=["c", "d"])
    store.similarity_search("kitten", k=1, filter={"kind": "pet"})
    store.as_retriever(search_type="mmr", search_kwargs={"k": 2}).invoke("kitten")

A store is one collection: a VARCHAR primary key (LangChain's string ids), a VARCHAR field
for the page content, a float vector field, and the metadata as dynamic fields (or as typed
columns, for the keys named in ``metadata_fields``). The collection is created on the first
write, with the dimension of the first embedding, unless it exists or ``dimension`` is given.
``full_text=True`` adds a BM25 function on the text, for :meth:`VecpgVectorStore.hybrid_search`
and ``as_retriever(search_type="hybrid")``.

Filters are a Milvus expression (``filter="year > {y}"`` with ``filter_params={"y": 2000}``;
``expr=`` is the same) or a dict ``{"key": value}``: equality (``None``: is null; a list:
one of), ANDed, each value bound as a template parameter, never pasted into the expression.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from typing_extensions import Self

from vecpg import AnnSearchRequest, Client, DataType, Function, FunctionType, RRFRanker

__all__ = ["VecpgRetriever", "VecpgVectorStore"]

# Relevance in [0, 1] from each metric's distance, as LangChain's score_threshold expects.
# For unit vectors all three give (1 + cos) / 2: IP is the cosine, and vecpg's L2 is the
# squared distance 2 - 2 cos (Milvus' convention).
_RELEVANCE: dict[str, Callable[[float], float]] = {
    "COSINE": lambda s: (1.0 + s) / 2.0,
    "IP": lambda s: (1.0 + s) / 2.0,
    "L2": lambda d: 1.0 - d / 4.0,
}
# search keywords passed on to Client.search as they are
_SEARCH_KEYWORDS = ("timeout", "recall", "strategy", "partition_names")


class VecpgVectorStore(VectorStore):
    """A LangChain vector store on the vecpg collection ``collection_name``.

    ``client_or_dsn``: a :class:`vecpg.Client` (shared, not closed by the store), or a DSN
    (``None``: ``$VECPG_DSN`` or the embedded server) for a client the store owns
    (:meth:`close`); ``schema`` is that client's Postgres schema. ``metric``: COSINE, IP or L2
    (squared, as Milvus). ``dimension``: of the vectors (default: the first embedding's).
    ``index_params``: an index on the vector field, made with the collection —
    ``{"index_type": "HNSW", "params": {"M": 16, "efConstruction": 64}}`` — (default none:
    the planner scans exactly). ``metadata_fields``: metadata keys stored as typed, nullable
    columns (``{"year": "INT64", "source": "VARCHAR"}``) instead of dynamic fields.
    ``full_text``: a BM25 function on the text into the sparse field ``sparse_field``
    (``analyzer_params`` as Milvus'). ``search_params``: the default of every search
    (``{"params": {"ef": 64}}``). ``drop_old``: drop an existing collection first.

    An existing collection is used as it is: its fields must have these names, its primary
    key must be VARCHAR and its metric ``metric``.
    """

    def __init__(self, client_or_dsn: Client | str | None, collection_name: str,
                 embedding: Embeddings, *, metric: str = "COSINE", text_field: str = "text",
                 vector_field: str = "vector", primary_field: str = "pk",
                 dimension: int | None = None, index_params: Mapping[str, Any] | None = None,
                 metadata_fields: Mapping[str, DataType | str] | None = None,
                 full_text: bool = False, sparse_field: str = "sparse",
                 analyzer_params: Mapping[str, Any] | None = None,
                 search_params: Mapping[str, Any] | None = None, drop_old: bool = False,
                 schema: str = "public", max_id_length: int = 512,
                 max_text_length: int = 65535, batch_size: int = 1000) -> None:
        if isinstance(client_or_dsn, Client):
            self.client, self._owns_client = client_or_dsn, False
        elif client_or_dsn is None or isinstance(client_or_dsn, str):
            self.client, self._owns_client = Client(client_or_dsn, schema=schema), True
        else:
            raise TypeError("client_or_dsn must be a vecpg.Client, a DSN or None, not "
                            f"{type(client_or_dsn).__name__}")
        if not isinstance(embedding, Embeddings):
            raise TypeError(f"embedding must be a LangChain Embeddings, not "
                            f"{type(embedding).__name__}")
        self.collection_name = collection_name
        self.embedding = embedding
        self.metric = metric.upper()
        if self.metric not in _RELEVANCE:
            raise ValueError(f"metric must be one of {sorted(_RELEVANCE)}, not {metric!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.text_field, self.vector_field = text_field, vector_field
        self.primary_field, self.sparse_field = primary_field, sparse_field
        self.dimension = dimension
        self.full_text = full_text
        self.metadata_fields: dict[str, DataType] = {
            k: DataType.parse(v) for k, v in (metadata_fields or {}).items()}
        self.search_params = dict(search_params) if search_params else None
        self._index_params = dict(index_params) if index_params else None
        self._analyzer_params = dict(analyzer_params) if analyzer_params else None
        self._max_id_length, self._max_text_length = max_id_length, max_text_length
        self._batch_size = batch_size
        self._exists = False
        if self.client.has_collection(collection_name):
            if drop_old:
                self.client.drop_collection(collection_name)
            else:
                self._adopt()
        if not self._exists and dimension is not None:
            self._create(dimension)

    # -- the collection ---------------------------------------------------------------------
    def _adopt(self) -> None:
        """Take the settings of the existing collection, checking it fits this store."""
        desc = self.client.describe_collection(self.collection_name)
        fields = {f["name"]: f for f in desc["fields"]}
        pk = fields.get(self.primary_field)
        if pk is None or not pk.get("is_primary") or _type(pk) != DataType.VARCHAR:
            raise ValueError(f"collection {self.collection_name!r} has no VARCHAR primary key "
                             f"{self.primary_field!r}")
        for name, dtype in ((self.text_field, DataType.VARCHAR),
                            (self.vector_field, DataType.FLOAT_VECTOR)):
            if name not in fields or _type(fields[name]) != dtype:
                raise ValueError(f"collection {self.collection_name!r} has no {dtype.name} "
                                 f"field {name!r}")
        if not desc.get("enable_dynamic_field"):
            raise ValueError(f"collection {self.collection_name!r} has no dynamic fields")
        stored = desc["metrics"][self.vector_field]
        if stored != self.metric:
            raise ValueError(f"collection {self.collection_name!r} has metric {stored}, "
                             f"not {self.metric}: pass metric={stored!r}")
        self.dimension = int(fields[self.vector_field]["params"]["dim"])
        # describe_collection lists no functions (vecpg answers "functions": []): a sparse
        # field of this name is taken to be the BM25 output of the text
        self.full_text = (self.sparse_field in fields
                          and _type(fields[self.sparse_field]) == DataType.SPARSE_FLOAT_VECTOR)
        skip = {self.primary_field, self.text_field, self.vector_field, self.sparse_field}
        self.metadata_fields = {n: _type(f) for n, f in fields.items() if n not in skip}
        self._exists = True

    def _create(self, dimension: int) -> None:
        s = self.client.create_schema(enable_dynamic_field=True)
        s.add_field(self.primary_field, DataType.VARCHAR, is_primary=True,
                    max_length=self._max_id_length)
        text_kw: dict[str, Any] = {"max_length": self._max_text_length}
        if self.full_text:
            text_kw.update(enable_analyzer=True, analyzer_params=self._analyzer_params)
        s.add_field(self.text_field, DataType.VARCHAR, **text_kw)
        s.add_field(self.vector_field, DataType.FLOAT_VECTOR, dim=dimension)
        for name, dtype in self.metadata_fields.items():
            kw: dict[str, Any] = {"max_length": 65535} if dtype == DataType.VARCHAR else {}
            s.add_field(name, dtype, nullable=True, **kw)
        ip = self.client.prepare_index_params()
        if self.full_text:
            s.add_field(self.sparse_field, DataType.SPARSE_FLOAT_VECTOR)
            s.add_function(Function(f"{self.sparse_field}_bm25", FunctionType.BM25,
                                    [self.text_field], [self.sparse_field]))
            ip.add_index(self.sparse_field, "SPARSE_INVERTED_INDEX", metric_type="BM25")
        if self._index_params:
            p = self._index_params
            ip.add_index(self.vector_field, p.get("index_type", "AUTOINDEX"),
                         metric_type=p.get("metric_type", self.metric),
                         params=p.get("params", {}))
        self.client.create_collection(self.collection_name, schema=s, metric_type=self.metric,
                                      index_params=ip or None)
        self.dimension, self._exists = dimension, True

    def close(self) -> None:
        """Close the client, if the store made it (a client it was given stays open)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model of the store's texts and queries."""
        return self.embedding

    # -- writing ----------------------------------------------------------------------------
    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None,
                  *, ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Embed and store ``texts`` (upsert: a given id that exists is replaced); ids that
        are missing or None get a fresh UUID. Returns the ids, in the texts' order."""
        batch_size = kwargs.pop("batch_size", self._batch_size)
        _no_more("add_texts", kwargs)
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        given: list[str | None] = list(ids) if ids is not None else [None] * len(texts)
        keys = [str(i) if i is not None else str(uuid.uuid4()) for i in given]
        if not texts:
            return []
        rows = [self._row(k, t, m or {}) for k, t, m in
                zip(keys, texts, metadatas or [{}] * len(texts))]
        vectors = self.embedding.embed_documents(texts)
        if not self._exists:
            self._create(self.dimension or len(vectors[0]))
        for row, v in zip(rows, vectors):
            row[self.vector_field] = list(v)
        for start in range(0, len(rows), batch_size):
            self.client.upsert(self.collection_name, rows[start:start + batch_size])
        return keys

    def _row(self, key: str, text: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {self.primary_field: key, self.text_field: text}
        meta: dict[str, Any] = {}
        for name, value in metadata.items():
            if name in self._reserved():
                raise ValueError(f"metadata key {name!r} is a field of the store; rename it "
                                 "(or give the store other field names)")
            (row if name in self.metadata_fields else meta)[name] = value
        row["$meta"] = meta
        return row

    def _reserved(self) -> set[str]:
        return {self.primary_field, self.text_field, self.vector_field, self.sparse_field,
                "$meta"}

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete the documents with these ids (missing ones are ignored), or those matching
        a ``filter`` (or ``expr``); with both, those with the ids that match the filter."""
        expr, params = self._filter_of(kwargs)
        _no_more("delete", kwargs)
        if ids is None and not expr:
            raise ValueError("delete needs ids or a filter")
        if not self._exists or (ids is not None and not ids):
            return True
        self.client.delete(self.collection_name, ids=None if ids is None else list(ids),
                           filter=expr, **_params_kw(params))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order of ``ids``; missing ones are skipped."""
        if not self._exists or not ids:
            return []
        rows = self.client.get(self.collection_name, list(ids),
                               output_fields=self._output_fields(False))
        found = {r[self.primary_field]: self._document(r[self.primary_field], r) for r in rows}
        return [found[i] for i in ids if i in found]

    # -- search -----------------------------------------------------------------------------
    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to ``query`` (keywords: ``filter``/``expr``,
        ``filter_params``, ``search_params``, and vecpg's ``recall`` and ``strategy``)."""
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """As :meth:`similarity_search`, each with the metric's distance as vecpg reports
        it: COSINE and IP similarities (higher is closer), squared L2 (lower is closer)."""
        return self.similarity_search_with_score_by_vector(
            self.embedding.embed_query(query), k, **kwargs)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to the vector ``embedding``."""
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k,
                                                                          **kwargs)]

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        """As :meth:`similarity_search_by_vector`, with the distances."""
        return [(d, s) for d, s, _ in self._search(embedding, k, False, kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _RELEVANCE[self.metric]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5,
                                      **kwargs: Any) -> list[Document]:
        """``k`` documents among the ``fetch_k`` nearest to ``query``, chosen for relevance
        and diversity (``lambda_mult`` 1: relevance only, 0: diversity only)."""
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                fetch_k: int = 20, lambda_mult: float = 0.5,
                                                **kwargs: Any) -> list[Document]:
        """As :meth:`max_marginal_relevance_search`, from a query vector."""
        found = self._search(embedding, max(fetch_k, k), True, kwargs)
        if not found:
            return []
        picked = maximal_marginal_relevance(np.asarray(embedding, dtype=np.float64),
                                            [v for _, _, v in found], lambda_mult, k)
        return [found[i][0] for i in picked]

    def _search(self, vector: Sequence[float], k: int, with_vectors: bool,
                kwargs: dict[str, Any]) -> list[tuple[Document, float, list[float]]]:
        kwargs = dict(kwargs)
        expr, params = self._filter_of(kwargs)
        search_params = kwargs.pop("search_params", kwargs.pop("param", self.search_params))
        extra = {n: kwargs.pop(n) for n in _SEARCH_KEYWORDS if n in kwargs}
        _no_more("search", kwargs)
        if not self._exists or k <= 0:
            return []
        res = self.client.search(self.collection_name, [list(vector)], filter=expr, limit=k,
                                 output_fields=self._output_fields(with_vectors),
                                 search_params=search_params, anns_field=self.vector_field,
                                 **extra, **_params_kw(params))
        out = []
        for hit in res[0]:
            entity = hit["entity"]
            vec = entity.get(self.vector_field) if with_vectors else None
            out.append((self._document(hit[self.primary_field], entity),
                        float(hit["distance"]), list(vec) if vec is not None else []))
        return out

    # -- hybrid search (full_text=True) -------------------------------------------------------
    def hybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` best documents for ``query`` by both the vector search and BM25 on the
        text, fused by ``ranker`` (default ``RRFRanker()``; ``WeightedRanker(w_vec, w_bm25)``
        weighs them). Each list has ``fetch_k`` candidates (default ``4 * k``); ``filter``
        applies to both. Needs a store made with ``full_text=True``."""
        return [d for d, _ in self.hybrid_search_with_score(query, k, **kwargs)]

    def hybrid_search_with_score(self, query: str, k: int = 4,
                                 **kwargs: Any) -> list[tuple[Document, float]]:
        """As :meth:`hybrid_search`, each with its fused score (higher is better)."""
        kwargs = dict(kwargs)
        expr, params = self._filter_of(kwargs)
        ranker = kwargs.pop("ranker", None) or RRFRanker()
        fetch_k = int(kwargs.pop("fetch_k", 4 * k))
        search_params = kwargs.pop("search_params", self.search_params) or {}
        _no_more("hybrid_search", kwargs)
        if not self.full_text:
            raise ValueError("hybrid_search needs a store made with full_text=True")
        if not self._exists or k <= 0:
            return []
        where, values = expr or None, params or None
        reqs = [AnnSearchRequest([self.embedding.embed_query(query)], self.vector_field,
                                 dict(search_params), max(fetch_k, k), where, values),
                AnnSearchRequest([query], self.sparse_field, {"metric_type": "BM25"},
                                 max(fetch_k, k), where, values)]
        res = self.client.hybrid_search(self.collection_name, reqs, ranker, limit=k,
                                        output_fields=self._output_fields(False))
        return [(self._document(h[self.primary_field], h["entity"]), float(h["distance"]))
                for h in res[0]]

    def as_retriever(self, **kwargs: Any) -> VecpgRetriever:
        """A retriever on the store: LangChain's search types (``similarity``,
        ``similarity_score_threshold``, ``mmr``) and ``hybrid`` (:meth:`hybrid_search`)."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return VecpgRetriever(vectorstore=self, tags=tags, **kwargs)

    # -- shared pieces ----------------------------------------------------------------------
    def _output_fields(self, with_vectors: bool) -> list[str]:
        fields = [self.text_field, *self.metadata_fields, "$meta"]
        return [*fields, self.vector_field] if with_vectors else fields

    def _document(self, key: Any, entity: Mapping[str, Any]) -> Document:
        skip = self._reserved()
        meta = {n: v for n, v in entity.items() if n not in skip and not (
            v is None and n in self.metadata_fields)}  # an unset typed column reads as None
        return Document(page_content=entity[self.text_field], metadata=meta, id=str(key))

    def _filter_of(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Pop ``filter``/``expr`` and ``filter_params`` from ``kwargs``: the expression text
        and the values of its placeholders."""
        f, expr = kwargs.pop("filter", None), kwargs.pop("expr", None)
        if f is not None and expr is not None:
            raise ValueError("give filter or expr, not both")
        f = expr if f is None else f
        params = dict(kwargs.pop("filter_params", None) or {})
        if f is None:
            return "", params
        if isinstance(f, str):
            return f, params
        if isinstance(f, Mapping):
            return self._dict_filter(f, params)
        raise TypeError(f"filter must be an expression string or a dict, not "
                        f"{type(f).__name__}")

    def _dict_filter(self, f: Mapping[str, Any], params: dict[str, Any]
                     ) -> tuple[str, dict[str, Any]]:
        """``{"key": value}`` as ``key == {p}`` ANDed, the values bound to placeholders."""
        terms = []
        for i, (key, value) in enumerate(f.items()):
            if not isinstance(key, str) or not key:
                raise TypeError(f"filter keys must be non-empty strings, not {key!r}")
            if key in self.metadata_fields or key in (self.text_field, self.primary_field):
                name = key
            elif any(c in key for c in '"\\') or not key.isprintable():
                raise ValueError(f"filter key {key!r}: a metadata key in a dict filter cannot "
                                 "hold quotes, backslashes or control characters")
            else:
                name = f'$meta["{key}"]'
            p = f"lc_filter_{i}"
            if p in params:
                raise ValueError(f"filter_params has the name {p!r} the dict filter uses")
            if value is None:
                terms.append(f"{name} is null")
                continue
            if isinstance(value, (list, tuple)):
                terms.append(f"{name} in {{{p}}}")
                value = list(value)
            elif isinstance(value, (bool, int, float, str)):
                terms.append(f"{name} == {{{p}}}")
            else:
                raise TypeError(f"filter value of {key!r} must be a bool, number, string, "
                                f"None or a list of them, not {type(value).__name__}")
            params[p] = value
        return " and ".join(terms), params

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings,
                   metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, client_or_dsn: Client | str | None = None,
                   collection_name: str = "langchain", **kwargs: Any) -> Self:
        """A store on ``collection_name`` (keywords as the constructor) with ``texts``
        added: ``VecpgVectorStore.from_texts(texts, emb, client_or_dsn=client)``."""
        store = cls(client_or_dsn, collection_name, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class VecpgRetriever(VectorStoreRetriever):
    """LangChain's vector-store retriever with one more search type, ``hybrid``
    (:meth:`VecpgVectorStore.hybrid_search`, ``search_kwargs`` as its keywords)."""

    vectorstore: VecpgVectorStore
    allowed_search_types: ClassVar[tuple[str, ...]] = (
        *VectorStoreRetriever.allowed_search_types, "hybrid")

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        if self.search_type == "hybrid":
            return self.vectorstore.hybrid_search(query, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        if self.search_type == "hybrid":
            return await run_in_executor(None, self.vectorstore.hybrid_search, query,
                                         **(self.search_kwargs | kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager,
                                                      **kwargs)


def _type(field: Mapping[str, Any]) -> DataType:
    """A described field's type as vecpg's DataType (describe_collection answers with
    pymilvus' enum when pymilvus is installed)."""
    t = field["type"]
    return DataType[t.name] if hasattr(t, "name") else DataType.parse(t)


def _no_more(what: str, kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"{what} got unexpected keyword arguments: {', '.join(sorted(kwargs))}")


def _params_kw(params: dict[str, Any]) -> dict[str, Any]:
    return {"filter_params": params} if params else {}
