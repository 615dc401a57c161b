"""A QA bot on chatterbot-corpus: questions embedded with all-MiniLM-L6-v2 (numpy), answers
in ordinary tables, one SQL join per new question.

    python -m examples.qa                        # all 2,144 English pairs
    python -m examples.qa --sample               # six of the 21 categories
    python -m examples.qa --ask "who invented the telephone"
"""

from __future__ import annotations

import argparse
import time

import vecpg

from . import store
from .corpus import load_pairs
from .minilm import MiniLM

DEMO_QUESTIONS = [
    "who came up with the theory of relativity?",
    "what's the boiling point of water",
    "my laptop will not turn on, what should I do",
    "can you recommend a good book",
    "are you a robot?",
    "how do I reverse a list in python",
]
SAMPLE_CATEGORIES = ["ai", "computers", "coding", "literature", "science", "trivia"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.qa", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--sample", action="store_true",
                    help=f"only the categories {', '.join(SAMPLE_CATEGORIES)}")
    ap.add_argument("--collection", default="qa_questions")
    ap.add_argument("--ask", action="append", help="a question (repeatable); default: a demo set")
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--hnsw", action="store_true",
                    help="build an HNSW index (approximate; exact search is the default: "
                         "the corpus is small)")
    args = ap.parse_args(argv)

    pairs = load_pairs(SAMPLE_CATEGORIES if args.sample else None)
    enc = MiniLM()
    t0 = time.perf_counter()
    emb = enc.encode([p.question for p in pairs])
    t_emb = time.perf_counter() - t0
    client = vecpg.connect(args.dsn)
    t0 = time.perf_counter()
    store.create(client, args.collection, pairs, emb, hnsw=args.hnsw)
    how = "with an HNSW index" if args.hnsw else "for exact search"
    print(f"{len(pairs)} question/answer pairs from chatterbot-corpus, "
          f"{len({p.category for p in pairs})} categories; embedded in {t_emb:.1f} s "
          f"(numpy MiniLM, {len(pairs) / t_emb:.0f} questions/s); stored {how} "
          f"in {time.perf_counter() - t0:.1f} s\n")

    for question in args.ask or DEMO_QUESTIONS:
        t0 = time.perf_counter()
        vec = enc.encode([question])[0]
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        answers = store.ask(client, args.collection, vec, k=args.k)
        t_sql = time.perf_counter() - t0
        print(f"Q: {question}   (embed {1000 * t_enc:.0f} ms, SQL {1000 * t_sql:.1f} ms)")
        for a in answers:
            print(f"   {a.similarity:.3f} [{a.category}] {_short(a.answer)}")
            print(f"         matched: {_short(a.matched_question)}")
        print()

    n, same_cat, paraphrased, same_answer = store.nearest_other_agreement(client, args.collection)
    print("Leave-one-out, one SQL statement (each question's nearest other question):")
    print(f"  same category: {same_cat} of {n} ({same_cat / n:.1%})")
    if paraphrased:
        print(f"  questions sharing their answer with another question: {paraphrased}; "
              f"nearest other question has the same answer: {same_answer} "
              f"({same_answer / paraphrased:.1%})")
    client.close()


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


if __name__ == "__main__":
    main()
