"""Argument checks for public calls: each returns the value in its canonical form or raises
an :class:`~vecpg.errors.InvalidArgument` subclass that says what was expected and what
came, so no bare ``TypeError``/``ValueError`` of Python or numpy escapes a public call.

    expr = args.text(filter, "filter")                 # "" for None
    offset = args.integer(offset, "offset")            # 0 .. 2**63 - 1, else InvalidArgument
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from .errors import InvalidArgument
from .schema import check_name

INT64_MAX = 2**63 - 1


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def text(value: Any, what: str, *, optional: bool = True) -> str:
    """A string (None is ``""`` when ``optional``)."""
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} "
                              f"{_got(value)}")
    return value


def name(value: Any, what: str) -> str:
    """A collection, field, index or partition name (see :func:`vecpg.schema.check_name`)."""
    return check_name(value, what)


def optional_name(value: Any, what: str) -> str | None:
    """A name, or None."""
    return None if value is None else check_name(value, what)


def round_decimal(value: Any) -> int | None:
    """pymilvus' ``round_decimal``: digits to round distances to, None for -1 / None (as
    they are)."""
    if value is None:
        return None
    digits = integer(value, "round_decimal", -1, 15)
    return None if digits == -1 else digits


def blank_name(value: Any, what: str) -> str | None:
    """A name, or None for None or ``""`` (pymilvus' default for "none")."""
    if value is None or (isinstance(value, str) and value == ""):
        return None
    return check_name(value, what)


def names(value: Any, what: str) -> list[str] | None:
    """A list of strings, or None; one string is a list of one."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{what} must be a list of strings, got {_got(value)}")
    return list(value)


def integer(value: Any, what: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    """An integer (not a bool; numpy integers welcome) in ``[lo, hi]``."""
    try:
        v = None if isinstance(value, bool) else operator.index(value)
    except TypeError:  # an array, a float, a string ...
        v = None
    if v is None or not lo <= v <= hi:
        raise InvalidArgument(f"{what} must be an integer in [{lo}, {hi}], got {_got(value)}")
    return v


def number(value: Any, what: str, lo: float, hi: float) -> float:
    """A real number (not a bool, not NaN) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise InvalidArgument(f"{what} must be a number in [{lo}, {hi}], got {_got(value)}")
    return float(value)


def check_recall(recall: Any) -> float:
    """A recall target: a number in (0, 1]."""
    if isinstance(recall, bool) or not isinstance(recall, (int, float)) or not 0 < recall <= 1:
        raise InvalidArgument(f"recall must be a number in (0, 1], got {_got(recall)}")
    return float(recall)


def flag(value: Any, what: str) -> bool:
    """A bool."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{what} must be True or False, got {_got(value)}")
    return value


def mapping(value: Any, what: str, *, optional: bool = True) -> dict[str, Any]:
    """A dict with string keys (None is ``{}`` when ``optional``)."""
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument(f"{what} must be a dict with string keys, got {_got(value)}")
    return dict(value)


def requests(value: Any, what: str) -> list[dict[str, Any]]:
    """Index requests: ``prepare_index_params()``'s list of dicts, or None (none)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidArgument(f"{what} must come from prepare_index_params() (a list of index "
                              f"requests), got {_got(value)}")
    return [dict(v) for v in value]


def index_request(field_name: Any, index_type: Any, index_name: Any, metric_type: Any,
                  params: Any) -> dict[str, Any]:
    """One index request from ``create_index``'s keywords, as ``add_index`` makes it."""
    text(field_name, "field_name", optional=False)
    text(index_type, "index_type", optional=False)
    optional_name(index_name, "index_name")
    if metric_type is not None:
        text(metric_type, "metric_type")
    return {"field_name": field_name, "index_type": index_type,
            "index_name": index_name or field_name, "metric_type": metric_type,
            "params": mapping(params, "params")}
