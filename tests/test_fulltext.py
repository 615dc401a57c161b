"""Full-text search against a real Postgres: BM25 scores equal rank_bm25's (fed with the
terms Postgres produced, Milvus' IDF), the BM25 top 10 is the exhaustive top 10 (also after
deletes and upserts), text_match/phrase_match equal a Python reference over the same
terms, and bad input raises vecpg errors."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rank_bm25 import BM25Okapi

import vecpg
from vecpg import DataType, Function, FunctionType
from vecpg.datasets import load_demo_sample
from vecpg.errors import (
    FilterError,
    InvalidArgument,
    MetricMismatch,
    NotSupported,
    SchemaError,
    VecpgError,
)

N_DOCS = 3000
K1, B = 1.4, 0.7  # not the defaults: the index's params must reach the scores


class MilvusBM25(BM25Okapi):
    """rank_bm25's Okapi scoring with Milvus' (Lucene's) IDF, ln(1 + (N - df + .5)/(df + .5)):
    rank_bm25's own IDF, ln((N - df + .5)/(df + .5)) with a floor, is not Milvus'."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1.0 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


@pytest.fixture(scope="module")
def texts() -> tuple[list[str], list[str]]:
    ds = load_demo_sample()
    return ([str(t) for t in ds.attrs["train_text"][:N_DOCS]],
            [str(t) for t in ds.attrs["test_text"][:40]])


def _schema(client: vecpg.Client, analyzer: dict[str, Any] | None = None) -> Any:
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True,
                enable_match=True, analyzer_params=analyzer)
    s.add_field("plain", DataType.VARCHAR, max_length=2000, nullable=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sparse"]))
    return s


@pytest.fixture
def docs(client: vecpg.Client, texts: tuple[list[str], list[str]]) -> Iterator[str]:
    client.create_collection("docs", schema=_schema(client, {"type": "english"}))
    ip = client.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25",
                 params={"bm25_k1": K1, "bm25_b": B})
    client.create_index("docs", ip)
    client.insert("docs", [{"id": i, "text": t, "plain": t} for i, t in enumerate(texts[0])])
    yield "docs"


def _doc_terms(conn: psycopg.Connection, schema_name: str, table: str = "docs"
               ) -> dict[int, dict[str, list[int]]]:
    """Each row's terms with their positions, as Postgres analyzed it."""
    out: dict[int, dict[str, list[int]]] = {}
    for pk, lexeme, positions in conn.execute(sql.SQL(
            "SELECT id, u.lexeme, u.positions FROM {} t LEFT JOIN LATERAL unnest(t._tsv_text)"
            " u ON true").format(sql.Identifier(schema_name, table))):
        terms = out.setdefault(pk, {})
        if lexeme is not None:
            terms[lexeme] = list(positions)
    return out


def _query_terms(conn: psycopg.Connection, text: str, cfg: str = "english"
                 ) -> dict[str, list[int]]:
    return {lx: list(pos) for lx, pos in conn.execute(
        "SELECT lexeme, positions FROM unnest(to_tsvector(%s::regconfig, %s))", (cfg, text))}


def _tokens(terms: dict[str, list[int]]) -> list[str]:
    return [lx for lx, pos in terms.items() for _ in pos]


def _reference(conn: psycopg.Connection, schema_name: str
               ) -> tuple[list[int], MilvusBM25]:
    terms = _doc_terms(conn, schema_name)
    ids = sorted(terms)
    return ids, MilvusBM25([_tokens(terms[i]) for i in ids], k1=K1, b=B)


def _check_search(client: vecpg.Client, conn: psycopg.Connection, schema_name: str,
                  queries: list[str], *, filter: str = "", keep: Any = None) -> float:
    """Search every query (limit 10 and 50); compare scores and the top 10 with the
    exhaustive reference. Returns the largest score difference."""
    ids, ref = _reference(conn, schema_name)
    worst = 0.0
    for limit in (10, 50):
        res = client.search("docs", queries, limit=limit, anns_field="sparse", filter=filter,
                            search_params={"metric_type": "BM25"})
        for q, hits in zip(queries, res):
            scores = ref.get_scores(_tokens(_query_terms(conn, q)))
            exact = sorted(((s, i) for s, i in zip(scores, ids)
                            if s > 0 and (keep is None or keep(i))), key=lambda x: (-x[0], x[1]))
            by_id = dict(zip(ids, scores))
            assert len(hits) == min(limit, len(exact))
            for h in hits:
                worst = max(worst, abs(h.distance - by_id[h.id]))
                assert h.distance == pytest.approx(by_id[h.id], abs=1e-6)
            got = [h.distance for h in hits]
            assert got == sorted(got, reverse=True)
            # the top k equals the exhaustive one (up to ties at the k-th score)
            if exact:
                kth = exact[len(hits) - 1][0]
                must = {i for s, i in exact if s > kth + 1e-9}
                assert must <= set(hits.ids)
                assert got[-1] == pytest.approx(kth, abs=1e-6)
    return worst


def test_bm25_equals_rank_bm25(client: vecpg.Client, conn: psycopg.Connection,
                               schema_name: str, docs: str,
                               texts: tuple[list[str], list[str]]) -> None:
    worst = _check_search(client, conn, schema_name, texts[1])
    print(f"max |vecpg - rank_bm25| = {worst:.3g}")
    assert worst < 1e-6
    plan = client.explain("docs", anns_field="sparse", search_params={"metric_type": "BM25"})
    assert plan["strategy"] == "bm25" and plan["estimated_recall"] == 1.0
    assert "vecpg.bm25_stats" in plan["sql"]
    assert "GIN" in plan["note"]
    # renamed, the collection keeps its statistics and its name is free again
    client.rename_collection("docs", "docs2")
    assert client.search("docs2", ["a genus of plants"], anns_field="sparse",
                         limit=3)[0].distances == client.search(
        "docs2", ["a genus of plants"], anns_field="sparse", limit=3)[0].distances
    client.create_collection("docs", schema=_schema(client))
    client.drop_collection("docs")
    client.rename_collection("docs2", "docs")
    desc = client.describe_index("docs", "sparse")
    assert desc["metric_type"] == "BM25" and desc["bm25_k1"] == K1 and desc["bm25_b"] == B


def test_bm25_after_deletes_and_upserts(client: vecpg.Client, conn: psycopg.Connection,
                                        schema_name: str, docs: str,
                                        texts: tuple[list[str], list[str]]) -> None:
    rng = random.Random(7)
    train, queries = texts
    client.delete("docs", ids=rng.sample(range(N_DOCS), 400))
    client.upsert("docs", [{"id": i, "text": train[rng.randrange(N_DOCS)]}
                           for i in rng.sample(range(N_DOCS), 300)])
    client.insert("docs", [{"id": N_DOCS + i, "text": q} for i, q in enumerate(queries[:20])])
    with conn.transaction():  # plain SQL is analyzed and counted too
        conn.execute(sql.SQL("INSERT INTO {} (id, text) VALUES (%s, %s)").format(
            sql.Identifier(schema_name, "docs")), (10**6, "a plain sql row about learning"))
        conn.execute(sql.SQL("UPDATE {} SET text = text || ' again' WHERE id < 50").format(
            sql.Identifier(schema_name, "docs")))
    n, total = conn.execute(sql.SQL("SELECT count(*), sum(vecpg.tsvector_length(_tsv_text))"
                                    " FROM {}").format(sql.Identifier(schema_name, "docs"))
                            ).fetchone() or (0, 0)
    stats = conn.execute("SELECT docs, total_length FROM vecpg.bm25_stats WHERE relid = %s"
                         "::regclass", (f'"{schema_name}"."docs"',)).fetchone()
    assert stats == (n, total)
    assert _check_search(client, conn, schema_name, queries + ["plain sql learning"]) < 1e-6
    # a transaction that rolls back leaves the statistics as they were
    with pytest.raises(RuntimeError), conn.transaction():
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema_name, "docs")))
        raise RuntimeError
    assert conn.execute("SELECT docs FROM vecpg.bm25_stats WHERE relid = %s::regclass",
                        (f'"{schema_name}"."docs"',)).fetchone() == (n,)


def test_bm25_with_filter_and_output(client: vecpg.Client, conn: psycopg.Connection,
                                     schema_name: str, docs: str,
                                     texts: tuple[list[str], list[str]]) -> None:
    # statistics are the collection's; the filter only restricts the candidates
    assert _check_search(client, conn, schema_name, texts[1][:10], filter="id < 1000",
                         keep=lambda i: i < 1000) < 1e-6
    hit = client.search("docs", ["the science of mind"], limit=1, anns_field="sparse",
                        output_fields=["text"])[0][0]
    assert hit.entity["text"] == texts[0][hit.id]
    # text queries through hybrid_search too
    res = client.hybrid_search("docs", [vecpg.AnnSearchRequest(
        ["mind science"], "sparse", {"metric_type": "BM25"}, 5)], limit=5)
    assert len(res[0]) == 5


def _matches_any(doc: dict[str, list[int]], q: dict[str, list[int]]) -> bool:
    return any(lx in doc for lx in q)


def _matches_phrase(doc: dict[str, list[int]], q: dict[str, list[int]], slop: int) -> bool:
    """Lucene's sloppy phrase: distinct positions p_i of the phrase's terms with
    max(p_i - q_i) - min(p_i - q_i) <= slop (q_i: positions in the phrase)."""
    pairs = sorted((p, lx) for lx, ps in q.items() for p in ps)
    if not pairs or any(lx not in doc for _, lx in pairs):
        return False
    for choice in itertools.product(*(doc[lx] for _, lx in pairs)):
        if len(set(choice)) < len(choice):
            continue
        offsets = [p - qp for p, (qp, _) in zip(choice, pairs)]
        if max(offsets) - min(offsets) <= slop:
            return True
    return False


def test_text_and_phrase_match(client: vecpg.Client, conn: psycopg.Connection,
                               schema_name: str, docs: str,
                               texts: tuple[list[str], list[str]]) -> None:
    terms = _doc_terms(conn, schema_name)
    rng = random.Random(3)
    words = ["machine learning", "cat dog horse", "the of", "Running RUNS ran",
             "o'reilly's back\\slash"]
    for t in rng.sample(texts[0], 8):
        w = t.split()
        words.append(" ".join(rng.sample(w, min(3, len(w)))))
    for w in words:
        q = _query_terms(conn, w)
        got = {r["id"] for r in client.query("docs", filter="text_match(text, {w})",
                                             filter_params={"w": w}, output_fields=["id"])}
        assert got == {i for i, d in terms.items() if _matches_any(d, q)}, w
    phrases = ["part of", "of the body", "a member of the", "plant genus", "genus of plant"]
    for t in rng.sample(texts[0], 10):
        w = t.split(": ", 1)[-1].split()
        i = rng.randrange(max(1, len(w) - 2))
        phrases.append(" ".join(w[i:i + rng.choice((2, 3))]))
    checked = 0
    for p in phrases:
        q = _query_terms(conn, p)
        for slop in (0, 1, 2, 3):
            expr = f'PHRASE_MATCH(text, {{p}}, {slop})' if slop else "phrase_match(text, {p})"
            got = {r["id"] for r in client.query("docs", filter=expr, filter_params={"p": p},
                                                 output_fields=["id"])}
            want = {i for i, d in terms.items() if _matches_phrase(d, q, slop)}
            assert got == want, (p, slop)
            checked += len(want)
    assert checked > 50  # the phrases do match something
    # swapped words need slop 2, one word in between slop 1 (Milvus' examples)
    client.insert("docs", [{"id": 10**5, "text": "learning machine"},
                           {"id": 10**5 + 1, "text": "machine deep learning"}])
    def ids(expr: str) -> set[int]:
        return {r["id"] for r in client.query("docs", filter=expr + " and id >= 100000")}
    assert ids('phrase_match(text, "machine learning", 1)') == {10**5 + 1}
    assert ids('phrase_match(text, "machine learning", 2)') == {10**5, 10**5 + 1}
    assert ids('not text_match(text, "machine")') == set()
    # a search filtered by text_match
    hits = client.search("docs", ["genus"], anns_field="sparse", limit=20,
                         filter='text_match(text, "plant")')[0]
    assert hits and all("plant" in terms[h.id] for h in hits)


def test_standard_analyzer_and_pymilvus_schema(client: vecpg.Client,
                                               conn: psycopg.Connection,
                                               schema_name: str) -> None:
    pymilvus = pytest.importorskip("pymilvus")
    s = pymilvus.CollectionSchema([
        pymilvus.FieldSchema("id", pymilvus.DataType.INT64, is_primary=True),
        pymilvus.FieldSchema("text", pymilvus.DataType.VARCHAR, max_length=500,
                             enable_analyzer=True, enable_match=True),
        pymilvus.FieldSchema("sparse", pymilvus.DataType.SPARSE_FLOAT_VECTOR)])
    s.add_function(pymilvus.Function("bm25", pymilvus.FunctionType.BM25, ["text"],
                                     ["sparse"]))
    client.create_collection("pm", schema=s)
    ip = client.prepare_index_params()
    ip.add_index("sparse", "AUTOINDEX", metric_type="BM25")
    client.create_index("pm", ip)
    client.insert("pm", [{"id": 1, "text": "The cats are running"},
                         {"id": 2, "text": "the cat runs"}, {"id": 3, "text": "dogs"}])
    # standard = lowercase, no stemming, no stop words: Postgres' simple
    hits = client.search("pm", ["cat the"], anns_field="sparse",
                         search_params={"metric_type": "BM25"})[0]
    assert hits.ids[0] == 2 and set(hits.ids) == {1, 2}
    assert [r["id"] for r in client.query("pm", 'text_match(text, "CATS")')] == [1]
    desc = client.describe_collection("pm")
    assert desc["collection_name"] == "pm"


def test_errors(client: vecpg.Client, docs: str) -> None:
    with pytest.raises(SchemaError):
        client.insert("docs", [{"id": -1, "text": "x", "sparse": {1: 0.5}}])
    with pytest.raises(MetricMismatch):
        client.search("docs", ["x"], anns_field="sparse", search_params={"metric_type": "IP"})
    with pytest.raises(InvalidArgument):
        client.search("docs", [[0.1, 0.2]], anns_field="sparse")
    with pytest.raises(InvalidArgument):
        client.search("docs", ["x"], anns_field="sparse", strategy="exact")
    with pytest.raises(FilterError):
        client.query("docs", 'text_match(plain, "x")')
    with pytest.raises(FilterError):
        client.query("docs", 'text_match(nope, "x")')
    with pytest.raises(FilterError):
        client.query("docs", 'phrase_match(text, "x", -1)')
    with pytest.raises(FilterError):
        client.query("docs", "text_match(text, 3)")
    with pytest.raises(NotSupported):
        client.search("docs", ["x"], anns_field="sparse", group_by_field="plain")
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("t", DataType.VARCHAR, max_length=9, enable_tokenizer=True, mmap_enabled=True,
                is_clustering_key=False)  # Milvus' options: accepted
    s.add_field("u", DataType.VARCHAR, max_length=9)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    with pytest.raises(SchemaError):
        s.add_field("w", DataType.VARCHAR, max_length=9, no_such_option=True)
    with pytest.raises(SchemaError):
        s.add_field("w", DataType.INT64, enable_analyzer=True)
    with pytest.raises(SchemaError):
        s.add_field("w", DataType.VARCHAR, enable_analyzer=True,
                    analyzer_params={"type": "chinese"})
    with pytest.raises(SchemaError):
        s.add_field("w", DataType.VARCHAR, enable_match=True)
    with pytest.raises(SchemaError):
        s.add_function(Function("f", FunctionType.BM25, ["u"], ["sp"]))  # not analyzed
    with pytest.raises(SchemaError):
        s.add_function(Function("f", FunctionType.BM25, ["t"], ["v"]))  # not sparse
    with pytest.raises(NotSupported):
        Function("f", FunctionType.TEXTEMBEDDING, ["t"], ["v"])
    client.create_collection("plainvec", schema=s)
    client.insert("plainvec", [{"id": 1, "v": [0.1, 0.2], "t": "a", "u": "b",
                                "sp": {1: 1.0}}])
    with pytest.raises(MetricMismatch):  # BM25 on a field no function computes
        client.search("plainvec", ["a"], anns_field="sp", search_params={"metric_type": "BM25"})
    with pytest.raises(FilterError):  # analyzed but without enable_match
        client.query("plainvec", 'text_match(t, "a")')
    with pytest.raises(VecpgError):
        client.create_index("plainvec", field_name="sp", index_type="SPARSE_INVERTED_INDEX",
                            metric_type="BM25")
    with pytest.raises(SchemaError):
        client.create_index("docs", field_name="sparse", index_name="again",
                            metric_type="IP")


def test_readme_sql_equals_search(client: vecpg.Client, conn: psycopg.Connection,
                                  schema_name: str, texts: tuple[list[str], list[str]]
                                  ) -> None:
    """The README's plain-SQL BM25 query (defaults k1 1.2, b 0.75) returns what search does."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sql\n(.*?)```", readme, re.S)
                 if "vecpg.bm25_stats" in b)
    client.create_collection("docs", schema=_schema(client, {"type": "english"}))
    client.create_index("docs", field_name="sparse", index_type="AUTOINDEX",
                        metric_type="BM25")
    client.insert("docs", [{"id": i, "text": t} for i, t in enumerate(texts[0][:1000])])
    stmt = block.replace("'public.docs'", f"'{schema_name}.docs'").replace("$1", "%s")
    conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(schema_name)))
    for q in texts[1][:10]:
        rows = conn.execute(stmt, (q,)).fetchall()
        hits = client.search("docs", [q], anns_field="sparse", limit=10)[0]
        kth = min(hits.distances)  # the same rows, up to ties at the 10th score
        assert {r[0] for r in rows if r[2] > kth + 1e-9} == \
            {h.id for h in hits if h.distance > kth + 1e-9}
        assert [r[2] for r in rows] == pytest.approx(hits.distances, abs=1e-9)


def test_truncate_resets_statistics(client: vecpg.Client, conn: psycopg.Connection,
                                    schema_name: str, docs: str) -> None:
    client.truncate_collection("docs")
    assert conn.execute("SELECT docs, total_length FROM vecpg.bm25_stats WHERE relid = "
                        "%s::regclass", (f'"{schema_name}"."docs"',)).fetchone() == (0, 0)
    client.insert("docs", [{"id": 1, "text": "one plant"}, {"id": 2, "text": "two plants"}])
    hits = client.search("docs", ["plant"], anns_field="sparse")[0]
    assert set(hits.ids) == {1, 2}
    idf = math.log(1 + (2 - 2 + 0.5) / (2 + 0.5))
    assert hits.distances[0] == pytest.approx(idf * (K1 + 1) / (1 + K1), abs=1e-9)
