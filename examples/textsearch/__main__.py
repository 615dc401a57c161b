"""A text search engine on WordNet's glosses: keywords or a question in, ranked documents
out, by dense (all-MiniLM-L6-v2), BM25 and hybrid (RRF) retrieval, with each document's
metadata joined from plain tables in SQL; then recall@10 and MRR of the three on queries
with known answers.

    python -m examples.textsearch                   # the 55,000 glosses of the dev dataset
    python -m examples.textsearch --sample          # the 5,000 packaged with vecpg
    python -m examples.textsearch --quick           # 2,000 of those, 100 queries a set
    python -m examples.textsearch --ask "animal that barks" --ask "fear of heights"
"""

from __future__ import annotations

import argparse
import sys
import time
from textwrap import shorten

import vecpg

from ..qa.minilm import MiniLM
from . import store
from .corpus import load_synsets
from .evaluate import measure
from .queries import make_queries

DEMO_QUERIES = [
    "large animal with a trunk",
    "a doctor who treats children",
    "fear of heights",
    "instrument for measuring air pressure",
    "what do you call a baby cat",
    "feline whiskers purr",
]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.textsearch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--sample", action="store_true",
                    help="the 5,000 glosses packaged with vecpg instead of the dev dataset")
    ap.add_argument("--quick", action="store_true",
                    help="a quick slice: 2,000 packaged glosses, 100 queries per set")
    ap.add_argument("--limit", type=int, help="only the first LIMIT documents")
    ap.add_argument("--queries", type=int, help="evaluation queries per set "
                    "(default 1000; --quick 100)")
    ap.add_argument("--collection", default="textsearch")
    ap.add_argument("--ask", action="append", help="a query (repeatable); default: a demo set")
    ap.add_argument("-k", type=int, default=3, help="documents shown per query and retriever")
    args = ap.parse_args(argv)

    _log("loading glosses and vectors ...")
    corpus = load_synsets(sample=args.sample or args.quick,
                          limit=args.limit or (2000 if args.quick else None))
    n_queries = args.queries or (100 if args.quick else 1000)
    client = vecpg.connect(args.dsn)
    t0 = time.perf_counter()
    store.create(client, args.collection, corpus)
    print(f"{len(corpus.synsets)} WordNet 3.0 glosses from {corpus.source}; stored with a BM25 "
          f"index and an HNSW index in {time.perf_counter() - t0:.1f} s "
          f"(collection {args.collection!r}, tables {args.collection}_synsets, "
          f"{args.collection}_lexfiles)\n")

    enc = MiniLM()  # examples/qa's numpy all-MiniLM-L6-v2, the model of the stored vectors
    asks = args.ask or DEMO_QUERIES
    vectors = enc.encode(asks)
    for text, vec in zip(asks, vectors):
        print(f"Q: {text}")
        for mode in store.MODES:
            hits = store.retrieve(client, args.collection, mode, [text], vec[None, :], k=args.k)[0]
            for d in store.lookup(client, args.collection, hits):
                label = mode if d.rank == 1 else ""
                print(f"   {label:<7}{d.rank}. {d.score:7.3f} {d.lemma} [{d.pos}, {d.lexfile}]"
                      f" {shorten(d.text.partition(': ')[2], 80, placeholder='…')}")
        print()

    sets = make_queries(corpus.synsets, n_queries)
    print(f"Known-item queries: {len(sets['keywords'])} synsets, 4 words of each one's "
          "definition (not of its lemma); 'typos': two of the four misspelled")
    for set_name, queries in sets.items():
        _log(f"embedding {len(queries)} '{set_name}' queries ...")
        t0 = time.perf_counter()
        qv = enc.encode([q.text for q in queries])
        _log(f"  {len(queries) / (time.perf_counter() - t0):.0f} queries/s (numpy MiniLM)")
        _log(f"searching '{set_name}' with {', '.join(store.MODES)} ...")
        print(f"\n  {set_name} (e.g. {queries[0].text!r} -> "
              f"{corpus.synsets[queries[0].answer].lemma!r})")
        print(f"  {'retriever':<10}{'recall@10':>10}{'MRR@10':>9}{'QPS':>8}")
        for q in measure(client, args.collection, queries, qv):
            print(f"  {q.mode:<10}{q.recall:>10.3f}{q.mrr:>9.3f}{q.qps:>8.0f}")
    client.close()


if __name__ == "__main__":
    main()
