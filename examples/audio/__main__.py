"""Audio similarity search: words spoken by espeak-ng in many voices, speeds and pitches,
MFCC embeddings (librosa) in a vecpg collection, the clips' records in a table of the same
Postgres; each held-out query (a stored word in an unseen voice and speed, with noise) is
answered by one SQL join, and its top-1/top-k word accuracy and latency are printed.

    python -m examples.audio              # 35 words: 1,680 stored clips, 140 queries
    python -m examples.audio --quick      # 10 words: 120 stored clips, 20 queries
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import vecpg

from . import mfcc, speech, store


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.audio", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--quick", action="store_true", help="a small slice: 10 words, 3 voices")
    ap.add_argument("--collection", default="audio_words",
                    help="collection name (the clips table is <name>_clips)")
    ap.add_argument("--snr", type=float, default=20.0, help="queries' noise, dB (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--wav-dir", help="keep the WAV files here (default: a temporary folder)")
    args = ap.parse_args(argv)

    if speech.espeak() is None:
        raise SystemExit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    setup = speech.QUICK if args.quick else speech.FULL
    with tempfile.TemporaryDirectory(prefix="vecpg-audio-") as tmp:
        wav_dir = Path(args.wav_dir or tmp)
        t0 = time.perf_counter()
        stored = speech.render(setup.stored(), wav_dir)
        queries = speech.render(setup.queries(), wav_dir)
        print(f"rendered {len(stored)} stored clips ({len(setup.words)} words x "
              f"{len(setup.voices)} voices x speeds {list(setup.speeds)} x pitches "
              f"{list(setup.pitches)}) and {len(queries)} queries (voices "
              f"{list(setup.query_voices)}, speeds {list(setup.query_speeds)}, pitch "
              f"{list(setup.query_pitches)}) with espeak-ng in {time.perf_counter() - t0:.1f} s"
              f"{f', WAVs in {wav_dir}' if args.wav_dir else ''}")

        t0 = time.perf_counter()
        x = mfcc.embed_all([c.samples for c in stored])
        rng = np.random.default_rng(args.seed)
        noisy = [speech.add_noise(c.samples, args.snr, rng) for c in queries]
        q = mfcc.embed_all(noisy)
        print(f"embedded {len(stored) + len(queries)} clips ({mfcc.DIM}-d MFCC statistics, "
              f"librosa; queries with white noise at {args.snr:g} dB SNR) in "
              f"{time.perf_counter() - t0:.1f} s")

        client = vecpg.connect(args.dsn)
        t0 = time.perf_counter()
        store.create(client, args.collection, stored, x)
        print(f"stored: collection {args.collection!r} (+ HNSW, COSINE) and table "
              f"'{args.collection}_clips' in {time.perf_counter() - t0:.1f} s")

        words = [c.word for c in queries]
        ev = store.evaluate(client, args.collection, q, words, args.k)
        print(f"\n{len(queries)} held-out queries: top-1 word accuracy {ev.top1:.3f}, "
              f"top-{ev.k} {ev.topk:.3f}; median latency {ev.join_ms:.2f} ms/query for the "
              f"join, {ev.search_ms:.2f} ms/query for client.search")

        shown = [i for i, c in enumerate(queries) if c.spec.speed == setup.query_speeds[0]
                 and c.spec.voice == setup.query_voices[0]][:4]
        wrong = [i for i, r in enumerate(ev.results) if r[0].word != words[i]][:2]
        for i in shown + [i for i in wrong if i not in shown]:
            c = queries[i]
            print(f"\nquery {c.word!r} ({c.spec.voice}, {c.spec.speed} wpm, noise "
                  f"{args.snr:g} dB):")
            for m in ev.results[i]:
                mark = "+" if m.word == c.word else "-"
                print(f"  {mark} {m.word:<9} clip {m.clip_id:>5}  {m.voice:<18} {m.speed} wpm "
                      f"{m.duration:.2f} s  distance {m.distance:.3f}")
        client.close()


if __name__ == "__main__":
    main()
