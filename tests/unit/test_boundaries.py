"""The boundaries docs/architecture.md draws: the server reaches the daemon only through the shared protocol, and
inference imports neither the server nor the agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("server", ("cove.agent",)),
        ("inference", ("cove.agent", "cove.server")),
        ("cove/protocol", ("cove.agent", "cove.server")),
    ],
)
def test_no_module_crosses_a_boundary(folder: str, forbidden: tuple[str, ...]) -> None:
    crossing = {
        path: sorted(name for name in names if name.startswith(forbidden))
        for path, names in imported_modules(folder).items()
        if any(name.startswith(forbidden) for name in names)
    }
    assert not crossing, crossing
