"""Video similarity search: which clip, and when, a distorted screenshot comes from.

Renders 30 short clips from images shipped in scikit-image (camera moves, cuts,
dissolves, fades), picks keyframes by scene-change detection, stores their embeddings in
a vecpg collection beside a plain clips table, and searches distorted screenshots with
one SQL join; prints top-1 / top-5 clip accuracy, the time error and the latency.

    python -m examples.video                 # 30 clips, 200 screenshots
    python -m examples.video --sample        # 8 clips, 50 screenshots
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import vecpg

from . import clips, features, store


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.video", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--sample", action="store_true", help="8 clips and 50 screenshots")
    ap.add_argument("--clips", type=int, help=f"the first N clips (default {clips.N_CLIPS})")
    ap.add_argument("--screenshots", type=int, help="how many queries (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="the screenshots' seed")
    ap.add_argument("--textures", action="store_true",
                    help="also film scikit-image's brick, grass and gravel textures")
    ap.add_argument("--collection", default="video_keyframes",
                    help="collection name; the clips table is <name>_clips")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per clip")
    args = ap.parse_args(argv)
    n_clips = args.clips or (8 if args.sample else None)
    n_shots = args.screenshots or (50 if args.sample else 200)

    t0 = time.perf_counter()
    images = clips.load_images()
    cs = clips.make_clips(n_clips, textures=args.textures)
    names = clips.sources(args.textures)
    print(f"{len(cs)} clips from {len(names)} scikit-image pictures at {clips.FPS:g} fps, "
          f"{clips.HEIGHT}x{clips.WIDTH}: rendering, embedding, picking keyframes ...", flush=True)
    frames, keys, vecs = {}, [], []
    for c in cs:
        frames[c.id] = c.frames(images)
        every = features.embed(frames[c.id])   # every frame, for the change detector
        keys.append(clips.keyframes(frames[c.id], every))
        vecs.append(every[keys[-1]])
        if args.verbose:
            print(f"  {c.title}: {c.duration:.1f} s, {c.n_frames} frames, "
                  f"{len(keys[-1])} keyframes", flush=True)
    n_frames = sum(c.n_frames for c in cs)
    per = np.array([len(k) for k in keys])
    moves = sum(len(c.shots) for c in cs)
    dissolves = sum(t == "dissolve" for c in cs for t in c.transitions)
    cuts = sum(t == "cut" for c in cs for t in c.transitions)
    print(f"  {moves} shots, {cuts} cuts, {dissolves} dissolves, "
          f"{sum(c.fade_in for c in cs)} fade-ins, {sum(c.fade_out for c in cs)} fade-outs; "
          f"{sum(c.duration for c in cs):.0f} s, {n_frames} frames")
    print(f"  keyframes: {per.sum()} ({100 * per.sum() / n_frames:.0f}% of the frames), "
          f"per clip min {per.min()} / median {np.median(per):g} / max {per.max()} "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)

    t0 = time.perf_counter()
    vectors = np.concatenate(vecs)
    client = vecpg.connect(args.dsn)
    store.create(client, args.collection, cs, keys, vectors)
    print(f"stored {len(vectors)} keyframe vectors ({vectors.shape[1]}-d, COSINE, HNSW) in "
          f"collection {args.collection!r} and {len(cs)} clips in table "
          f"'{args.collection}_clips' ({time.perf_counter() - t0:.1f} s)", flush=True)

    t0 = time.perf_counter()
    shots = features.screenshots(frames, n_shots, seed=args.seed)
    q = features.embed(np.stack([s.image for s in shots]))
    print(f"{n_shots} distorted screenshots (seed {args.seed}; crop 80-95%, colour gain "
          f"±10% and offset ±0.05, blur 0.8 px, noise 0.03, JPEG q{features.JPEG_QUALITY}) "
          f"made in {time.perf_counter() - t0:.1f} s; searching ...", flush=True)
    scores, matches = store.evaluate(client, args.collection,
                                     [(s.clip_id, s.time) for s in shots], q)
    print(f"  top-1 clip accuracy {scores.top1:.3f}, top-5 {scores.top5:.3f}")
    print(f"  time of the top hit: median error {scores.time_error:.2f} s, "
          f"{100 * scores.within_1s:.0f}% within 1 s")
    print(f"  latency of one search (join, one statement): median {scores.latency_ms:.1f} ms, "
          f"p95 {scores.latency_p95_ms:.1f} ms")
    print("\nfirst screenshots:")
    for s, m in list(zip(shots, matches))[:5]:
        best = m[0]
        mark = "ok" if best.clip_id == s.clip_id else f"wrong (truth clip {s.clip_id:02d})"
        print(f"  clip {s.clip_id:02d} at {s.time:4.2f} s -> {best.title} at {best.time:.2f} s, "
              f"d={best.distance:.3f}: {mark}")
    client.close()


if __name__ == "__main__":
    main()
