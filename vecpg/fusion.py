"""Hybrid search: several searches of one collection fused into one ranking, as Milvus'
``hybrid_search`` does, with its rankers.

- :class:`RRFRanker` (reciprocal rank fusion): a row's score is the sum over the searches
  that found it of ``1 / (k + rank)``, ranks counted from 1.
- :class:`WeightedRanker`: the sum of ``weight * normalized(distance)``; with
  ``norm_score`` (the default) each metric's value is mapped to [0, 1] as Milvus maps it:
  COSINE ``(1 + s) / 2``, IP ``1/2 + atan(s) / pi``, BM25 ``2 atan(s) / pi``, distances
  (L2, HAMMING, ...) ``1 - 2 atan(d) / pi``. Without it, distances are still turned into
  larger-is-better values that way when the searches mix directions.

pymilvus' own ``AnnSearchRequest``, ``RRFRanker`` and ``WeightedRanker`` are accepted as
they are (read by their attributes and ``dict()``); vecpg has its own of the same names so
pymilvus is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import args
from .errors import InvalidArgument
from .metrics import Metric


@dataclass(frozen=True)
class AnnSearchRequest:
    """One search of a hybrid search (pymilvus' names): query vectors ``data`` on
    ``anns_field`` with search parameters ``param``, its own ``limit`` and filter ``expr``
    (``filter`` is the same), with ``expr_params`` for the filter's placeholders."""

    data: Any
    anns_field: str
    param: dict[str, Any]
    limit: int
    expr: str | None = None
    expr_params: dict[str, Any] | None = None
    filter: str | None = None

    def __post_init__(self) -> None:
        if self.expr is not None and self.filter is not None:
            raise InvalidArgument("give an AnnSearchRequest expr or filter, not both")
        if self.filter is not None:  # one name for the filter from here on: expr
            object.__setattr__(self, "expr", self.filter)


class RRFRanker:
    """Reciprocal rank fusion: ``sum(1 / (k + rank))`` (Milvus' default k = 60)."""

    def __init__(self, k: int = 60) -> None:
        self.k = args.integer(k, "RRFRanker k", 1, 16384)

    def dict(self) -> dict[str, Any]:
        """pymilvus' form: ``{"strategy": "rrf", "params": {"k": k}}``."""
        return {"strategy": "rrf", "params": {"k": self.k}}


class WeightedRanker:
    """A weighted sum of (normalized) scores, one weight per search, in request order."""

    def __init__(self, *weights: float, norm_score: bool = True) -> None:
        self.weights = [args.number(w, "WeightedRanker weight", -math.inf, math.inf)
                        for w in weights]
        self.norm_score = args.flag(norm_score, "norm_score")

    def dict(self) -> dict[str, Any]:
        """pymilvus' form: ``{"strategy": "weighted", "params": {"weights", "norm_score"}}``."""
        return {"strategy": "weighted",
                "params": {"weights": self.weights, "norm_score": self.norm_score}}


def request(r: Any) -> AnnSearchRequest:
    """An :class:`AnnSearchRequest` from vecpg's, pymilvus' or a dict of the same keys."""
    if isinstance(r, AnnSearchRequest):
        return r
    def get(key: str) -> Any:
        return r.get(key) if isinstance(r, dict) else getattr(r, key, None)
    param = get("param")
    if param is not None and not isinstance(param, dict):
        raise InvalidArgument(f"AnnSearchRequest param must be a dict, got {param!r}")
    expr = get("expr") if get("expr") is not None else get("filter")
    return AnnSearchRequest(get("data"), args.name(get("anns_field"), "anns_field"),
                            dict(param or {}),
                            args.integer(get("limit"), "AnnSearchRequest limit", 1, 16384),
                            None if expr is None else args.text(expr, "expr"),
                            get("expr_params"))


def ranker(value: Any, n: int) -> tuple[str, dict[str, Any]]:
    """``(strategy, params)`` of a ranker for ``n`` searches (None: RRF with k = 60)."""
    if value is None:
        return "rrf", {"k": 60}
    doc = value.dict() if hasattr(value, "dict") else value
    if not isinstance(doc, dict) or "strategy" not in doc:
        raise InvalidArgument(f"ranker must be an RRFRanker or a WeightedRanker, got {value!r}")
    strategy = str(doc["strategy"]).lower()
    params = dict(doc.get("params") or {})
    if strategy == "rrf":
        return "rrf", {"k": args.integer(params.get("k", 60), "RRFRanker k", 1, 16384)}
    if strategy == "weighted":
        weights = params.get("weights") or []
        if len(weights) != n:
            raise InvalidArgument(f"WeightedRanker has {len(weights)} weights for {n} searches")
        return "weighted", {"weights": [float(w) for w in weights],
                            "norm_score": bool(params.get("norm_score", True))}
    raise InvalidArgument(f"unknown ranker strategy {strategy!r}; vecpg has rrf and weighted")


def _normalize(metric: Metric | str, value: float) -> float:
    m = str(getattr(metric, "value", metric)).upper()
    if m == "COSINE":
        return (1.0 + value) * 0.5
    if m == "IP":
        return 0.5 + math.atan(value) / math.pi
    if m == "BM25":
        return 2.0 * math.atan(value) / math.pi
    return 1.0 - 2.0 * math.atan(value) / math.pi  # distances: smaller is closer


def _larger_is_closer(metric: Metric | str) -> bool:
    return str(getattr(metric, "value", metric)).upper() in ("COSINE", "IP", "BM25")


def fuse(strategy: str, params: dict[str, Any], results: Sequence[Sequence[tuple[Any, float]]],
         metrics: Sequence[Metric | str], k: int) -> list[tuple[Any, float]]:
    """The ``k`` best ``(key, score)`` of one query, from each search's ``(key, distance)``
    hits (closest first), fused by the ranker; best first, ties by first appearance."""
    scores: dict[Any, float] = {}
    if strategy == "rrf":
        c = params["k"]
        for hits in results:
            for rank, (key, _) in enumerate(hits, start=1):
                scores[key] = scores.get(key, 0.0) + 1.0 / (c + rank)
        descending = True
    else:
        weights, norm = params["weights"], params["norm_score"]
        mixed = len({_larger_is_closer(m) for m in metrics}) > 1
        descending = norm or mixed or _larger_is_closer(metrics[0])
        for w, m, hits in zip(weights, metrics, results):
            for key, d in hits:
                v = _normalize(m, d) if (norm or (mixed and not _larger_is_closer(m))) else d
                scores[key] = scores.get(key, 0.0) + w * v
    order = sorted(scores.items(), key=lambda kv: -kv[1] if descending else kv[1])
    return order[:k]


def group(ranked: Sequence[tuple[Any, float]], group_of: dict[Any, Any], groups: int,
          size: int, skip: int = 0) -> list[tuple[Any, float]]:
    """Milvus' grouping of a fused ranking (``group_by_field`` on hybrid_search): the
    ``groups`` best groups after the first ``skip``, a group ranked by its best row, each
    with its ``size`` best rows, group after group; rows without a group value are left
    out, as Milvus leaves them."""
    members: dict[Any, list[tuple[Any, float]]] = {}
    for key, score in ranked:
        g = group_of.get(key)
        if g is None:
            continue
        hits = members.setdefault(_hashable(g), [])
        if len(hits) < size:
            hits.append((key, score))
    chosen = list(members.values())[skip:skip + groups]  # dicts keep first-seen order
    return [hit for hits in chosen for hit in hits]


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, (dict, list)) else value
