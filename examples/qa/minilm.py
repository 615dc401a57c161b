"""all-MiniLM-L6-v2 sentence embeddings in numpy: what sentence-transformers computes,
without torch.

The model is a 6-layer BERT (hidden 384, 12 heads of 32, feed-forward 1536, exact GELU,
post-LayerNorm with eps 1e-12); a sentence's embedding is the mean of the last layer's
token vectors over the attention mask, L2-normalized. Inputs are cut at 256 tokens, as
sentence-transformers does for this model.

    enc = MiniLM()                  # finds or fetches the weights (see model.py)
    vecs = enc.encode(["how do I join tables?"])   # (1, 384) float32, unit length
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

from .model import model_dir

MAX_TOKENS = 256


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2.0))))


class MiniLM:
    """The sentence encoder; ``encode`` takes a list of strings."""

    def __init__(self, directory: Path | None = None) -> None:
        d = directory or model_dir()
        cfg = json.loads((d / "config.json").read_text())
        self.layers = int(cfg["num_hidden_layers"])
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg["layer_norm_eps"])
        self.dim = int(cfg["hidden_size"])
        # weights as contiguous, aligned (in, out) matrices: numpy's matmul falls off BLAS
        # onto a slow loop for the unaligned, transposed arrays safetensors hands back
        self.w = {k: np.array(v.T if k.endswith("dense.weight") or (".self." in k and
                              k.endswith(".weight")) else v, order="C")
                  for k, v in load_file(str(d / "model.safetensors")).items()}
        self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)))

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # batches of similar length waste little work on padding
        lengths = [sum(e.attention_mask) for e in self.tok.encode_batch(list(texts))]
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            out[idx] = self._batch([texts[j] for j in idx])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        w = self.w
        n, t = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(t)][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self.eps)
        h, dh = self.heads, self.dim // self.heads
        # padding keys get -inf-like scores, so they carry no attention weight
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                wt = w[p + name + ".weight"]
                return (v.reshape(-1, wt.shape[0]) @ wt).reshape(*v.shape[:-1], -1) \
                    + w[p + name + ".bias"]

            q = lin(x, "attention.self.query").reshape(n, t, h, dh).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(n, t, h, dh).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(n, t, h, dh).transpose(0, 2, 1, 3)
            s = q @ k / np.float32(np.sqrt(dh)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, self.dim)
            x = _layer_norm(lin(ctx, "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            ff = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(ff + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
