"""Clip -> vector: MFCC statistics computed with librosa, L2-normalised.

    >>> v = embed(clip.samples)          # float32, shape (DIM,), |v| = 1

Steps: trim leading/trailing audio quieter than 20 dB below the loudest frame (so a
noisy query keeps only the word); 40-band log-mel spectrum (23 ms windows at 22.05 kHz,
hop 5.8 ms) with a 40 dB floor below its peak (clean and noisy clips then
look alike in the quiet bands); MFCCs 1-19 (c0, the loudness, dropped) minus their mean
over the clip (cepstral mean normalisation: removes much of the voice and channel); then
the means over 8 equal time segments (the word's shape in time, whatever its speed), the
standard deviation and the mean absolute delta of each coefficient: 19 x 10 = 190 values.
"""

from __future__ import annotations

import itertools

import librosa
import numpy as np

from .speech import SAMPLE_RATE

N_MFCC = 20            # c0..c19; c0 is dropped
SEGMENTS = 8
TRIM_DB = 20.0
FLOOR_DB = 40.0
DIM = (N_MFCC - 1) * (SEGMENTS + 2)


def embed(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 190-d unit vector of one clip (mono float samples at ``sr`` Hz)."""
    y, _ = librosa.effects.trim(samples, top_db=TRIM_DB)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, hop_length=128, n_mels=40,
                                         fmax=8000)
    log_mel = librosa.power_to_db(mel, ref=np.max, top_db=FLOOR_DB)
    m = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)[1:]
    m = m - m.mean(axis=1, keepdims=True)
    edges = np.linspace(0, m.shape[1], SEGMENTS + 1).astype(int)
    parts = [m[:, a:max(b, a + 1)].mean(axis=1) for a, b in itertools.pairwise(edges)]
    parts.append(m.std(axis=1))
    delta = librosa.feature.delta(m, width=5 if m.shape[1] >= 5 else 3, mode="nearest")
    parts.append(np.abs(delta).mean(axis=1))
    v: np.ndarray = np.concatenate(parts)
    unit: np.ndarray = (v / np.linalg.norm(v)).astype(np.float32)
    return unit


def embed_all(clips: list[np.ndarray], sr: int = SAMPLE_RATE) -> np.ndarray:
    """``embed`` of each clip, stacked: (n, DIM) float32."""
    return np.stack([embed(c, sr) for c in clips]) if clips else np.zeros((0, DIM), np.float32)
