"""vecpg.Client against pymilvus' MilvusClient class itself: every public method is
classified (vecpg/milvus_api.py), exists on vecpg's client with pymilvus' parameter names
in pymilvus' order, takes ``timeout`` and keywords, and the README's table is the one the
classification generates. Fails when pymilvus grows a method nobody classified."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import vecpg
from vecpg.milvus_api import STATUS, table

pymilvus = pytest.importorskip("pymilvus")

PYMILVUS = sorted(n for n, v in inspect.getmembers(pymilvus.MilvusClient)
                  if not n.startswith("_") and callable(v))


def test_every_pymilvus_method_is_classified() -> None:
    unclassified = [n for n in PYMILVUS if n not in STATUS]
    assert not unclassified, f"classify these in vecpg/milvus_api.py: {unclassified}"
    assert len(PYMILVUS) >= 120  # pymilvus 3.0's surface, not an empty import


def _positional(fn: object) -> list[str]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [p.name for p in sig.parameters.values() if p.name != "self"
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


SUPPORTED = [n for n in PYMILVUS if STATUS.get(n, ("",))[0] != "not_supported"]


@pytest.mark.parametrize("name", SUPPORTED)
def test_signature_matches_pymilvus(name: str) -> None:
    ours = getattr(vecpg.Client, name, None)
    assert ours is not None, f"vecpg.Client lacks {name}"
    theirs = getattr(pymilvus.MilvusClient, name)
    want, got = _positional(theirs), _positional(ours)
    # same names in the same positions (vecpg may add keyword-only ones after them)
    assert got[:len(want)] == want, (name, want, got)
    params = inspect.signature(ours).parameters
    theirs_params = inspect.signature(theirs).parameters
    if any(p.kind is p.VAR_KEYWORD for p in theirs_params.values()):
        assert any(p.kind is p.VAR_KEYWORD for p in params.values()), f"{name} takes no **kwargs"
    for kw, p in theirs_params.items():
        if p.kind is p.KEYWORD_ONLY:
            assert kw in params, (name, kw)


def test_not_supported_methods_say_what_to_do(client: vecpg.Client) -> None:
    for name in PYMILVUS:
        status, _ = STATUS[name]
        if status != "not_supported" or name == "create_struct_field_schema":
            continue
        required = [p for p in inspect.signature(getattr(pymilvus.MilvusClient, name))
                    .parameters.values() if p.name != "self" and p.default is p.empty
                    and p.kind is p.POSITIONAL_OR_KEYWORD]
        with pytest.raises(vecpg.NotSupported) as err:
            getattr(client, name)(*["x"] * len(required))
        assert len(str(err.value)) > 30, (name, str(err.value))  # says what to do instead


def test_unknown_keywords_are_refused_not_dropped(client: vecpg.Client) -> None:
    client.create_collection("c", dimension=2)
    client.insert("c", [{"id": 1, "vector": [1, 0]}], timeout=5)
    assert client.has_collection("c", timeout=1.5)
    with pytest.raises(vecpg.NotSupported, match="no_such_keyword"):
        client.search("c", [[1, 0]], no_such_keyword="id")
    with pytest.raises(vecpg.InvalidArgument, match="consistency_level"):
        client.search("c", [[1, 0]], consistency_level="Sometimes")
    assert client.search("c", [[1, 0]], consistency_level="Strong")[0].ids == [1]


def test_readme_table_is_generated_from_the_classification() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert table() in readme, "regenerate the README's MilvusClient table: " \
        "python -c 'from vecpg.milvus_api import table; print(table())'"
