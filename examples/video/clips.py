"""Short clips rendered from real photographs, and their keyframes.

The footage: 17 images that ship inside the scikit-image wheel (``skimage.data``:
astronaut, camera, cat, coffee, coins, ...), each cut into tiles (2x2, or 1x2 for the two
wide scans of text); the three texture samples (brick, grass, gravel) join them with
``textures=True``. Every tile is filmed once, as one *shot*: a virtual camera moves
across it (a pan, a zoom in or out, a rotation, or a pan with a zoom) and is sampled at
``FPS`` frames a second into ``HEIGHT`` x ``WIDTH`` RGB frames (bilinear, scipy). A clip is
two or three shots joined by a hard cut or a one-second cross-dissolve, some of them
fading in from black or out to black. Everything is seeded: the same clips every run.

Keyframes are picked by scene-change detection: a frame is a keyframe when its colour
histogram differs from the previous frame's by more than ``CUT_THRESHOLD`` (L1 distance of
HSV histograms) or its embedding from the previous frame's by more than
``FEATURE_THRESHOLD`` (cosine distance; this catches a cut between two grey pictures of
similar brightness), and at least every ``MAX_GAP`` seconds otherwise (camera moves change
the picture without a cut).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage import color, data

HEIGHT, WIDTH = 96, 128
FPS = 4.0
DISSOLVE = 1.0        # seconds of a cross-dissolve between two shots
FADE = 0.75           # seconds of a fade from / to black
CUT_THRESHOLD = 0.5   # L1 distance of consecutive frames' HSV histograms (0..2)
MAX_GAP = 1.5         # seconds: a keyframe at least this often
FEATURE_THRESHOLD = 0.3  # cosine distance of consecutive frames' embeddings
BLACK = 0.03          # a frame darker than this on average is never a keyframe

_stereo_pair: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] = data.stereo_motorcycle

# name -> loader; every one reads a file inside the scikit-image wheel (no download)
SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": data.astronaut, "camera": data.camera, "cat": data.cat,
    "coffee": data.coffee, "coins": data.coins, "hubble_deep_field": data.hubble_deep_field,
    "immunohistochemistry": data.immunohistochemistry, "moon": data.moon,
    "retina": data.retina, "rocket": data.rocket, "brick": data.brick, "grass": data.grass,
    "gravel": data.gravel, "cell": data.cell, "clock": data.clock,
    "colorwheel": data.colorwheel, "logo": data.logo, "page": data.page, "text": data.text,
    "motorcycle": lambda: _stereo_pair()[0],
}
# stochastic textures: their four tiles look alike, so a screenshot of one cannot say which
# clip it comes from (they are left out unless asked for)
TEXTURES = ("brick", "grass", "gravel")
MOVES = ("pan", "zoom in", "zoom out", "rotate", "pan + zoom")


def _rgb(img: np.ndarray) -> np.ndarray:
    """float32 RGB in [0, 1]: grey stacked, RGBA composited on white."""
    x = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
    if x.ndim == 2:
        x = np.repeat(x[:, :, None], 3, axis=2)
    if x.shape[2] == 4:
        x = x[:, :, :3] * x[:, :, 3:] + (1.0 - x[:, :, 3:])
    return np.ascontiguousarray(x[:, :, :3])


@dataclass(frozen=True)
class Tile:
    source: str         # skimage.data name
    part: str           # "upper left", ..., "left", "right"
    box: tuple[int, int, int, int]  # top, left, bottom, right in the source image


def sources(textures: bool = False) -> list[str]:
    """The source images' names, in a fixed order."""
    return [s for s in SOURCES if textures or s not in TEXTURES]


def tiles(textures: bool = False) -> list[Tile]:
    """Every source image cut into 2x2 tiles (1x2 when it is less than 300 px high)."""
    out = []
    for name in sources(textures):
        load = SOURCES[name]
        h, w = load().shape[:2]
        rows = ("upper", "lower") if h >= 300 else ("",)
        for i, r in enumerate(rows):
            for j, c in enumerate(("left", "right")):
                box = (i * h // len(rows), j * w // 2, (i + 1) * h // len(rows), (j + 1) * w // 2)
                out.append(Tile(name, f"{r} {c}".strip(), box))
    return out


@dataclass(frozen=True)
class Shot:
    """One camera move across one tile: at local time u in [0, 1] the camera looks at
    ``centre(u)`` (in tile pixels), magnified by ``1 / scale(u)``, rotated by ``angle(u)``."""

    tile: Tile
    move: str
    duration: float
    c0: tuple[float, float]
    c1: tuple[float, float]
    s0: float
    s1: float
    a0: float
    a1: float

    def camera(self, u: float) -> tuple[float, float, float, float]:
        e = 0.5 - 0.5 * math.cos(math.pi * min(max(u, 0.0), 1.0))  # ease in and out
        return (self.c0[0] + e * (self.c1[0] - self.c0[0]),
                self.c0[1] + e * (self.c1[1] - self.c0[1]),
                self.s0 + e * (self.s1 - self.s0), self.a0 + e * (self.a1 - self.a0))


def _plan_shot(tile: Tile, move: str, duration: float, rng: np.random.Generator) -> Shot:
    th, tw = tile.box[2] - tile.box[0], tile.box[3] - tile.box[1]
    # `fit`: the scale (source px per frame px) at which the frame covers the whole tile
    fit = min(th / HEIGHT, tw / WIDTH)
    a_end = float(rng.choice([-1, 1]) * rng.uniform(15, 30)) if move == "rotate" else 0.0
    if move == "pan":
        s0 = s1 = fit * rng.uniform(0.55, 0.7)
    elif move == "zoom in":
        s0, s1 = fit * 0.95, fit * rng.uniform(0.4, 0.55)
    elif move == "zoom out":
        s0, s1 = fit * rng.uniform(0.4, 0.55), fit * 0.95
    elif move == "rotate":
        rad = math.radians(abs(a_end))  # the turned frame still inside the tile
        s0 = s1 = fit * 0.95 / (math.cos(rad) + math.sin(rad) * max(WIDTH / HEIGHT, 1.0))
    else:  # pan + zoom
        s0, s1 = fit * rng.uniform(0.8, 0.9), fit * rng.uniform(0.45, 0.6)

    def free(s: float, a: float) -> tuple[float, float]:
        rad = math.radians(abs(a))
        fh = s * (HEIGHT * math.cos(rad) + WIDTH * math.sin(rad))
        fw = s * (WIDTH * math.cos(rad) + HEIGHT * math.sin(rad))
        return max(th - fh, 0.0) / 2, max(tw - fw, 0.0) / 2  # how far the centre may move

    def centre(s: float, a: float, toward: np.ndarray) -> tuple[float, float]:
        my, mx = free(s, a)
        return th / 2 + float(toward[0]) * my, tw / 2 + float(toward[1]) * mx

    d = rng.uniform(-1, 1, 2)
    if move == "pan":
        d = d / max(np.abs(d).max(), 1e-6)  # from one edge to the other
        c0, c1 = centre(s0, 0, d), centre(s1, 0, -d)
    else:
        c0, c1 = centre(s0, 0, 0.3 * d), centre(s1, a_end, rng.uniform(-0.8, 0.8, 2))
    return Shot(tile, move, duration, c0, c1, float(s0), float(s1), 0.0, a_end)


@dataclass
class Clip:
    id: int
    shots: list[Shot]
    transitions: list[str]        # between consecutive shots: "cut" or "dissolve"
    fade_in: bool
    fade_out: bool
    starts: list[float] = field(default_factory=list)  # each shot's start in the clip (s)

    def __post_init__(self) -> None:
        t, self.starts = 0.0, []
        for i, s in enumerate(self.shots):
            self.starts.append(t)
            # a dissolve overlaps the two shots by DISSOLVE seconds
            overlap = DISSOLVE if i + 1 < len(self.shots) and self.transitions[i] == "dissolve" \
                else 0.0
            t += s.duration - overlap

    @property
    def duration(self) -> float:
        return self.starts[-1] + self.shots[-1].duration

    @property
    def n_frames(self) -> int:
        return math.floor(self.duration * FPS + 1e-9)

    @property
    def title(self) -> str:
        return f"clip {self.id:02d}: " + " / ".join(
            f"{s.tile.source} ({s.tile.part}, {s.move})" for s in self.shots)

    def frame(self, i: int, images: dict[str, np.ndarray]) -> np.ndarray:
        """Frame ``i`` (time ``i / FPS``) as float32 RGB (HEIGHT, WIDTH, 3) in [0, 1]."""
        t = i / FPS
        out = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        for k, shot in enumerate(self.shots):
            u = (t - self.starts[k]) / shot.duration
            if not 0.0 <= u < 1.0:
                continue
            w = 1.0
            if k > 0 and self.transitions[k - 1] == "dissolve":
                w = min(w, (t - self.starts[k]) / DISSOLVE)           # fading in over the last
            if k + 1 < len(self.shots) and self.transitions[k] == "dissolve":
                w = min(w, (self.starts[k + 1] + DISSOLVE - t) / DISSOLVE)
            out += min(max(w, 0.0), 1.0) * render(shot, u, images)
        if self.fade_in:
            out *= min(t / FADE, 1.0)
        if self.fade_out:
            out *= min((self.duration - t) / FADE, 1.0)
        return np.clip(out, 0.0, 1.0)

    def frames(self, images: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([self.frame(i, images) for i in range(self.n_frames)])


def render(shot: Shot, u: float, images: dict[str, np.ndarray]) -> np.ndarray:
    """The camera's view of its tile at local time ``u``: an affine resampling."""
    cy, cx, s, a = shot.camera(u)
    top, left, bottom, right = shot.tile.box
    img = images[shot.tile.source][top:bottom, left:right]
    rad = math.radians(a)
    m = s * np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    offset = np.array([cy, cx]) - m @ np.array([(HEIGHT - 1) / 2, (WIDTH - 1) / 2])
    return np.stack([ndimage.affine_transform(img[:, :, ch], m, offset, (HEIGHT, WIDTH),
                                              order=1, mode="nearest") for ch in range(3)],
                    axis=2)


def load_images() -> dict[str, np.ndarray]:
    """The source images as float32 RGB in [0, 1]."""
    return {name: _rgb(load()) for name, load in SOURCES.items()}


N_CLIPS = 30


def make_clips(n: int | None = None, seed: int = 0, textures: bool = False) -> list[Clip]:
    """The seeded clips: every tile once, dealt two or three shots to a clip (``N_CLIPS``
    clips; 64 tiles, 76 with the textures); ``n`` keeps the first ``n``."""
    rng = np.random.default_rng(seed)
    ts = tiles(textures)
    order = rng.permutation(len(ts))
    n_all = N_CLIPS
    sizes = [3] * (len(ts) - 2 * n_all) + [2] * (3 * n_all - len(ts))
    sizes = [int(x) for x in rng.permutation(sizes)]
    clips, pos = [], 0
    for cid, size in enumerate(sizes):
        shots = [_plan_shot(ts[int(j)], str(rng.choice(MOVES)), float(rng.uniform(2.0, 3.5)), rng)
                 for j in order[pos:pos + size]]
        pos += size
        trans = [str(rng.choice(["cut", "dissolve"])) for _ in shots[1:]]
        clips.append(Clip(cid, shots, trans, bool(rng.random() < 0.4), bool(rng.random() < 0.4)))
    return clips[:n] if n is not None else clips


def hsv_histogram(frames: np.ndarray, bins: tuple[int, int, int] = (8, 4, 4)) -> np.ndarray:
    """Per-frame joint HSV histogram, summing to 1: (n, prod(bins))."""
    hsv = color.rgb2hsv(frames.reshape(-1, WIDTH, 3)).reshape(len(frames), -1, 3)
    q = [np.minimum((hsv[..., c] * b).astype(np.int64), b - 1) for c, b in enumerate(bins)]
    idx = (q[0] * bins[1] + q[1]) * bins[2] + q[2]
    n = int(np.prod(bins))
    h = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float32)
    return np.asarray(h / h.sum(axis=1, keepdims=True))


def keyframes(frames: np.ndarray, vectors: np.ndarray | None = None,
              threshold: float = CUT_THRESHOLD, feature_threshold: float = FEATURE_THRESHOLD,
              max_gap: float = MAX_GAP) -> list[int]:
    """Indices of the keyframes: the first frame, each frame whose HSV histogram is more
    than ``threshold`` (L1) from the previous frame's or (given the frames' unit
    ``vectors``) whose embedding is more than ``feature_threshold`` (cosine distance) from
    the previous frame's, and one at least every ``max_gap`` seconds. Frames that are
    (nearly) black, as at the start of a fade-in, are skipped: they show nothing of the
    clip."""
    h = hsv_histogram(frames)
    change = np.abs(np.diff(h, axis=0)).sum(axis=1) > threshold
    if vectors is not None:
        change |= 1.0 - np.sum(vectors[1:] * vectors[:-1], axis=1) > feature_threshold
    dark = frames.mean(axis=(1, 2, 3)) < BLACK
    keys: list[int] = []
    gap = round(max_gap * FPS)
    for i in range(len(frames)):
        if dark[i]:
            continue
        if not keys or change[i - 1] or i - keys[-1] >= gap:
            keys.append(i)
    return keys
