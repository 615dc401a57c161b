"""The README's Python example runs as written (against the test server)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import vecpg

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(dsn: str, schema_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has a Python example"
    real_connect = vecpg.connect
    monkeypatch.setattr(vecpg, "connect", lambda *a, **k: real_connect(dsn, schema=schema_name))
    rng = np.random.default_rng(0)
    n = 50
    namespace = {
        "vec": rng.normal(size=384).astype(np.float32),
        "query_vec": rng.normal(size=384).astype(np.float32),
        "titles": [f"Deep paper {i}" for i in range(n)],
        "tags": [["ml"] if i % 2 else ["db"] for i in range(n)],
        "np_matrix": rng.normal(size=(n, 384)).astype(np.float32),
    }
    code = compile(blocks[0], "README.md", "exec")
    first = dict(namespace)
    exec(code, first)
    first["client"].close()
    exec(code, namespace)  # again, as it stands: it drops what it made before
    client = namespace["client"]
    assert client.count("papers") == n
    assert len(namespace["hits"][0]) == 10
    client.close()
