"""The ``vecpg`` command: the demo (the main job) and info, against the test server."""

from __future__ import annotations

import io
import json

import pytest

import vecpg
from vecpg.cli import main
from vecpg.demo import DEMO_COLLECTION, run_demo
from vecpg.migrate import head_revision


def test_demo_recall_and_output(client: vecpg.Client) -> None:
    out = io.StringIO()
    recalls = run_demo(client, out=out)
    assert client.count(DEMO_COLLECTION) == 5000
    assert client.describe_index(DEMO_COLLECTION, "embedding")["index_type"] == "HNSW"
    text = out.getvalue()
    assert set(recalls) == {"all rows", "nouns only", "noun.state only", "exact vs numpy"}
    assert all(r >= 0.95 for r in recalls.values()), recalls
    assert recalls["exact vs numpy"] == pytest.approx(1.0, abs=0.002)
    assert "query: " in text and "recall" in text


def test_info_lists_collections(dsn: str, client: vecpg.Client,
                                capsys: pytest.CaptureFixture[str]) -> None:
    client.create_collection("one", dimension=2)
    assert main(["--dsn", dsn, "--schema", client.schema, "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pgvector"] == "0.8.5" and info["vecpg_schema_revision"] == head_revision()
    assert info["collections"]["one"]["rows"] == 0


def test_errors_are_reported_not_raised(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dsn", dsn, "--schema", "bad-name", "info"]) == 2
    assert "InvalidName" in capsys.readouterr().err
