"""The code passes its linters: mypy over vecpg/ (strict on untyped defs) and ruff over the
repository (both configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "vecpg", "tests", "scripts",
                          "examples", "migrations"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def _module_imports(path: Path, package: str) -> set[str]:
    """The vecpg modules ``path`` imports when it is imported: module-level imports only
    (not those inside functions, which run later, nor ``if TYPE_CHECKING`` ones)."""
    import ast

    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names = [f"{base}.{node.module}"] if node.module else \
                    [f"{base}.{a.name}" for a in node.names]
                out.update(names)
            elif node.module and node.module.startswith("vecpg"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("vecpg"))
    return out


def test_imports_flow_one_way() -> None:
    """The package's import-time module graph has no cycle: each concept imports only
    those below it (session, catalog, indexes; ddl; query; stats; planner; executor;
    calibrate; client)."""
    pkg = ROOT / "vecpg"
    graph: dict[str, set[str]] = {}
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = name if rel.name == "__init__" else name.rsplit(".", 1)[0]
        graph[name] = _module_imports(path, package)
    known = set(graph)
    graph = {m: {d for d in deps if d in known and d != m} for m, deps in graph.items()}
    # the package root re-exports names; its submodules importing it is not a layering edge
    graph.pop("vecpg", None)
    for deps in graph.values():
        deps.discard("vecpg")
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    # the layering the modules are meant to follow
    # (the command line, the demo and the Milvus wire protocol sit on top of the client)
    assert "vecpg.client" not in set().union(*(graph[m] for m in graph if m not in (
        "vecpg.cli", "vecpg.demo") and not m.startswith("vecpg.wire")))
    assert "vecpg.planner" not in graph["vecpg.query"] | graph["vecpg.catalog"]
    assert "vecpg.executor" not in graph["vecpg.planner"]
