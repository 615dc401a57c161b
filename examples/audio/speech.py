"""Spoken words rendered by espeak-ng: a fixed vocabulary in several voices, speeds and
pitches, each clip written to a WAV file with ``espeak-ng -w`` and read back as float32.

    >>> clips = render(grid(["yes", "no"], ["en-us+m1"], [175], [50]), "/tmp/wavs")
    >>> clips[0].word, clips[0].duration
    >>> FULL.stored(), FULL.queries()      # the example's 1,680 stored clips, 140 queries

Rendering is deterministic: the same word, voice, speed and pitch give the same samples.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The 35 keywords of Google's Speech Commands v2 data set (Warden, 2018), here spoken by
# espeak-ng instead of people: digits, commands and a few fillers chosen there to sound
# alike (tree/three, bed/bird, off/on, follow/four/forward, no/go).
VOCABULARY = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "forward", "backward", "follow", "learn", "visual",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
)

# espeak-ng voice = language/accent + variant (+m1..+m7 male, +f1..+f5 female, ...)
STORED_VOICES = ("en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-gb-scotland+m2",
                 "en-029+f1", "en-gb-x-rp+m4", "en-us-nyc+f3")
STORED_SPEEDS = (140, 175, 210)          # words per minute (espeak-ng -s; its default 175)
STORED_PITCHES = (35, 65)                # 0..99 (espeak-ng -p; its default 50)
QUERY_VOICES = ("en-gb-x-gbclan+m5", "en-us+f5")   # accents/variants never stored
QUERY_SPEEDS = (155, 195)
QUERY_PITCHES = (50,)
SAMPLE_RATE = 22050                      # espeak-ng's output rate


def espeak() -> str | None:
    """The espeak-ng executable, or None when it is not installed."""
    return shutil.which("espeak-ng")


@dataclass(frozen=True)
class Spec:
    """What to say and how."""

    word: str
    voice: str
    speed: int
    pitch: int

    @property
    def stem(self) -> str:
        return f"{self.word}_{self.voice.replace('+', '-')}_s{self.speed}_p{self.pitch}"


@dataclass
class Clip:
    spec: Spec
    path: Path
    samples: np.ndarray = field(repr=False)    # float32 in [-1, 1], SAMPLE_RATE Hz, mono

    @property
    def word(self) -> str:
        return self.spec.word

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.samples) / SAMPLE_RATE


def grid(words: tuple[str, ...] | list[str], voices: tuple[str, ...] | list[str],
         speeds: tuple[int, ...] | list[int], pitches: tuple[int, ...] | list[int]
         ) -> list[Spec]:
    """Every combination, word-major (so ids stay stable when a slice is taken)."""
    return [Spec(w, v, s, p) for w, v, s, p in itertools.product(words, voices, speeds, pitches)]


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit mono WAV as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"{path}: expected 16-bit mono at {SAMPLE_RATE} Hz, got "
                             f"{w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit, "
                             f"{w.getframerate()} Hz")
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def render_one(spec: Spec, out_dir: Path, exe: str = "espeak-ng") -> Clip:
    """Say ``spec.word`` into ``out_dir/<stem>.wav`` (kept if it is already there)."""
    path = out_dir / f"{spec.stem}.wav"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run([exe, "-v", spec.voice, "-s", str(spec.speed), "-p", str(spec.pitch),
                        "-w", str(tmp), spec.word], check=True, capture_output=True)
        tmp.replace(path)
    return Clip(spec, path, read_wav(path))


def render(specs: list[Spec], out_dir: str | Path, workers: int = 4) -> list[Clip]:
    """Render every spec (in parallel espeak-ng processes), in the order given."""
    exe = espeak()
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda s: render_one(s, out, exe), specs))


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``samples`` plus white Gaussian noise whose power is ``snr_db`` dB below the clip's
    mean power (over the whole clip)."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    sigma = np.sqrt(power / 10 ** (snr_db / 10))
    return (samples + rng.normal(0.0, sigma, len(samples))).astype(np.float32)


@dataclass(frozen=True)
class Setup:
    """Which clips are stored and which are held out as queries."""

    words: tuple[str, ...]
    voices: tuple[str, ...]
    speeds: tuple[int, ...]
    pitches: tuple[int, ...]
    query_voices: tuple[str, ...]
    query_speeds: tuple[int, ...]
    query_pitches: tuple[int, ...]

    def stored(self) -> list[Spec]:
        return grid(self.words, self.voices, self.speeds, self.pitches)

    def queries(self) -> list[Spec]:
        return grid(self.words, self.query_voices, self.query_speeds, self.query_pitches)


FULL = Setup(VOCABULARY, STORED_VOICES, STORED_SPEEDS, STORED_PITCHES,
             QUERY_VOICES, QUERY_SPEEDS, QUERY_PITCHES)
# --quick and the CI test: the ten digits, three stored voices, one held-out voice
QUICK = Setup(VOCABULARY[:10], ("en-us+m1", "en-gb+f4", "en-gb-scotland+m2"), (140, 210),
              (35, 65), ("en-us+f5",), QUERY_SPEEDS, QUERY_PITCHES)
