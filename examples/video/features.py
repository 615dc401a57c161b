"""Frame embeddings (classical features, no model weights) and distorted screenshots.

A frame is first standardised per colour channel (mean 0, standard deviation 1), which
cancels a screenshot's colour gain and brightness offset. Its embedding, each part
L2-normalised, weighted (``WEIGHTS``), then the whole L2-normalised (cosine distance =
1 - dot product), 456 numbers:

- colour layout: the standardised frame averaged down to 6 x 8 cells (MPEG-7's
  colour-layout idea), 144 numbers;
- HOG (``skimage.feature.hog``) of the grey frame after a Gaussian blur (sigma 1.5 px, to
  keep noise and JPEG blocks out of the gradients): 8 orientations, 32x32-pixel cells
  (coarse, so that a crop's shift moves little), 1x1 blocks: 3 x 4 x 8 = 96 numbers;
- colour histogram of the standardised channels, 6 x 6 x 6 bins over [-2.5, 2.5],
  square-rooted (Hellinger): 216 numbers.

A screenshot is a frame of a clip at a random time, distorted in this order (parameters
drawn from a seeded generator, one per screenshot):

1. crop: a window of 80-95% of the frame's width and height (same fraction, random
   place), resized back to the frame size (bilinear);
2. colour shift: each channel times a gain in [0.9, 1.1], plus a brightness offset in
   [-0.05, 0.05];
3. blur: Gaussian, sigma 0.8 px;
4. noise: Gaussian, sigma 0.03 (on the 0..1 scale), clipped;
5. JPEG: encoded and decoded by Pillow at quality 35.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import color
from skimage.feature import hog

from .clips import FPS, HEIGHT, WIDTH

WEIGHTS = {"layout": 1.0, "hog": 1.0, "histogram": 1.0}
CROP = (0.80, 0.95)
GAIN, OFFSET = 0.10, 0.05
BLUR_SIGMA = 0.8
NOISE_SIGMA = 0.03
JPEG_QUALITY = 35


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))


def _standardise(frames: np.ndarray) -> np.ndarray:
    m = frames.mean(axis=(1, 2), keepdims=True)
    s = frames.std(axis=(1, 2), keepdims=True)
    # the floor: a flat channel is not blown up into noise
    return np.asarray((frames - m) / np.maximum(s, 0.02))


def _pool(x: np.ndarray, gh: int, gw: int) -> np.ndarray:
    n, h, w = x.shape[:3]
    return np.asarray(x.reshape(n, gh, h // gh, gw, w // gw, *x.shape[3:]).mean(axis=(2, 4)))


def embed(frames: np.ndarray) -> np.ndarray:
    """(n, HEIGHT, WIDTH, 3) float RGB in [0, 1] -> (n, DIM) float32 unit vectors."""
    n = len(frames)
    z = _standardise(frames.astype(np.float64))
    layout = _pool(z, 6, 8).reshape(n, -1)
    grey = color.rgb2gray(frames)
    grads = np.stack([hog(ndimage.gaussian_filter(g, 1.5), orientations=8,
                          pixels_per_cell=(32, 32), cells_per_block=(1, 1), block_norm="L2-Hys")
                      for g in grey])
    q = np.clip(((z + 2.5) / 5.0 * 6).astype(np.int64), 0, 5)
    idx = ((q[..., 0] * 6 + q[..., 1]) * 6 + q[..., 2]).reshape(n, -1)
    hist = np.stack([np.bincount(row, minlength=216) for row in idx]).astype(np.float64)
    hist = np.sqrt(hist / hist.sum(axis=1, keepdims=True))
    parts = [WEIGHTS["layout"] * _unit(layout), WEIGHTS["hog"] * _unit(grads),
             WEIGHTS["histogram"] * _unit(hist)]
    return _unit(np.concatenate(parts, axis=1)).astype(np.float32)


DIM = 6 * 8 * 3 + (HEIGHT // 32) * (WIDTH // 32) * 8 + 216


@dataclass(frozen=True)
class Screenshot:
    clip_id: int
    time: float          # seconds into the clip
    image: np.ndarray    # (HEIGHT, WIDTH, 3) float32 in [0, 1], distorted


def distort(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The distortions of the module docstring, in that order."""
    f = rng.uniform(*CROP)
    ch, cw = f * HEIGHT, f * WIDTH
    y0, x0 = rng.uniform(0, HEIGHT - ch), rng.uniform(0, WIDTH - cw)
    m = np.diag([ch / HEIGHT, cw / WIDTH])
    x = np.stack([ndimage.affine_transform(frame[:, :, c], m, (y0, x0), (HEIGHT, WIDTH),
                                           order=1, mode="nearest") for c in range(3)], axis=2)
    x = x * rng.uniform(1 - GAIN, 1 + GAIN, 3) + rng.uniform(-OFFSET, OFFSET)
    x = ndimage.gaussian_filter(x, (BLUR_SIGMA, BLUR_SIGMA, 0))
    x = np.clip(x + rng.normal(0.0, NOISE_SIGMA, x.shape), 0.0, 1.0)
    buf = io.BytesIO()
    Image.fromarray((x * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=JPEG_QUALITY)
    buf.seek(0)
    return np.asarray(Image.open(buf), dtype=np.float32) / 255.0


def screenshots(clip_frames: dict[int, np.ndarray], n: int, seed: int = 0) -> list[Screenshot]:
    """``n`` screenshots: each of a random clip (of ``clip_frames``: id -> its frames) at a
    random frame, distorted; one seeded generator, so the same ones every run."""
    rng = np.random.default_rng(seed)
    ids = sorted(clip_frames)
    out = []
    for _ in range(n):
        cid = ids[int(rng.integers(len(ids)))]
        i = int(rng.integers(len(clip_frames[cid])))
        out.append(Screenshot(cid, i / FPS, distort(clip_frames[cid][i], rng)))
    return out
