"""The ``vecpg`` command: the demo (the main job) and info, against the test server."""

from __future__ import annotations

import io
import json

import psycopg
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
    assert "all rows 5,000 rows" in text and f"table {client.schema}.{DEMO_COLLECTION}" in text


def test_info_lists_collections(dsn: str, client: vecpg.Client,
                                capsys: pytest.CaptureFixture[str]) -> None:
    client.create_collection("one", dimension=2)
    assert main(["--dsn", dsn, "--schema", client.schema, "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    # the embedded servers ship pgvector 0.8.5, Debian 13's PostgreSQL 17 has 0.8.0
    with psycopg.connect(dsn) as c:
        (ext,) = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                           ).fetchone()
    assert info["pgvector"] == ext and info["vecpg_schema_revision"] == head_revision()
    assert info["collections"]["one"]["rows"] == 0


def test_errors_are_reported_not_raised(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dsn", dsn, "--schema", "bad-name", "info"]) == 2
    assert "InvalidName" in capsys.readouterr().err


def test_version_and_help_without_markup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"vecpg {vecpg.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "vecpg demo" in text and "``" not in text and ":mod:" not in text


def test_a_closed_pipe_and_a_bad_file_end_in_one_line(tmp_path, dsn: str) -> None:
    import subprocess
    import sys

    env = {**__import__("os").environ, "PYTHONPATH": __import__("os").getcwd()}
    bad = tmp_path / "x.hdf5"
    bad.write_text("not hdf5")
    run = subprocess.run([sys.executable, "-m", "vecpg.cli", "bench", str(bad)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("vecpg: error:")
    # the reader of vecpg's output goes away after one byte: no traceback, a non-zero exit
    # (a command that prints a megabyte stands in for a long `vecpg info`)
    script = ("import sys, vecpg.cli as c\n"
              "c.cmd_info = lambda a: print('x' * 10**6) or 0\n"
              f"sys.exit(c.main(['--dsn', {dsn!r}, 'info']))")
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    assert p.stdout is not None
    p.stdout.read(1)
    p.stdout.close()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and b"Traceback" not in err and b"BrokenPipe" not in err


def test_dsn_and_psql_pass_their_arguments_on(tmp_path, dsn: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import subprocess
    import sys

    assert main(["--dsn", dsn, "dsn"]) == 0 and capsys.readouterr().out.strip() == dsn
    # nothing runs in an empty data directory: one line that says what to do, exit 2
    assert main(["--data-dir", str(tmp_path / "none"), "dsn"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vecpg: ServerUnavailable:") and err.endswith("`vecpg server start`")
    with pytest.raises(SystemExit) as done:  # only psql takes arguments vecpg does not know
        main(["--dsn", dsn, "info", "-c", "x"])
    assert done.value.code == 2
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    run = subprocess.run([sys.executable, "-m", "vecpg.cli", "--dsn", dsn, "psql", "-X", "-A",
                          "-t", "-v", "n=41", "-c", r"\echo :n", "-c", "SELECT 41 + 1"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0 and run.stdout.split() == ["41", "42"], run.stderr
