"""``python -m examples.langchain [--dsn DSN]``: build the store, show three prompts, and the
noun-filtered retriever's recall@10 against the exact answer."""

from __future__ import annotations

import argparse

import vecpg
from vecpg.datasets import load_demo_sample

from .rag import build_store, noun_recall, prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dsn", default=None, help="Postgres DSN (default: $VECPG_DSN or the "
                    "embedded server)")
    a = ap.parse_args()
    ds = load_demo_sample()
    with vecpg.connect(a.dsn) as client:
        store = build_store(client, ds)
        for q in range(3):
            print(prompt(store, str(ds.attrs["test_text"][q]), pos="n"))
        print(f"recall@10 (nouns only): {noun_recall(store, ds):.3f}")


if __name__ == "__main__":
    main()
