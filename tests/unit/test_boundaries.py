"""The boundaries docs/architecture.md draws: cove/'s core (config, errors, languages, runtime, the daemon client,
the protocol with the completion job's vocabulary) imports nothing above it; the server reaches the daemon only
through the shared protocol; inference imports neither the server nor the agent; nothing imports the CLI (the
command line is a face, like the server). Inside inference/ and server/, the wings keep their order (the
architecture's table). Relative imports count too. And one name per thing: no two classes of the
product share a name."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The package each top-level folder is (pyproject.toml's package-dir).
PACKAGES = {"cove": "cove", "server": "cove.server", "agent": "cove.agent", "inference": "cove.inference"}
#: The command line (cove/cli/): a face, which may import anything below it.
ABOVE_CORE = ("cove.server", "cove.agent", "cove.inference", "cove.cli", "cove.acp")


def module_of(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    return ".".join([PACKAGES[folder], *rest]).removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, relative ones resolved."""
    package = module_of(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_of(path)
    return imported_by(path.read_text(encoding="utf-8"), package)


def imported_by(source: str, package: str) -> set[str]:
    """Every module `source`, a module of `package`, imports (and each name imported from one)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from cove import cli`
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def product_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


#: The faces inside cove/: the command line and the Agent Client Protocol agent.
FACES = ("cli", "acp")


def core_files() -> list[Path]:
    return [path for path in product_files("cove") if not any(path.is_relative_to(ROOT / "cove" / f) for f in FACES)]


@pytest.mark.parametrize(
    ("files", "forbidden"),
    [
        (core_files, ABOVE_CORE),
        (lambda: product_files("server"), ("cove.agent", *ABOVE_CORE[3:])),
        (lambda: product_files("inference"), ("cove.agent", "cove.server", *ABOVE_CORE[3:])),
        (lambda: product_files("agent"), ("cove.server", *ABOVE_CORE[3:])),
        # A face of the daemon, like the server: it reaches the host only through the protocol.
        (lambda: product_files("cove/acp"), ("cove.server", "cove.agent", "cove.inference", "cove.cli")),
    ],
    ids=["core", "server", "inference", "agent", "acp"],
)
def test_no_module_imports_above_its_layer(files: object, forbidden: tuple[str, ...]) -> None:
    assert callable(files)
    crossing = {
        str(path.relative_to(ROOT)): sorted(name for name in imports_of(path) if name.startswith(forbidden))
        for path in files()
    }
    crossing = {path: names for path, names in crossing.items() if names}
    assert not crossing, crossing


#: Each wing of inference/ and server/ and the wings (or modules) it must not import.
WING_RULES = {
    "inference/model": ("cove.inference.completion", "cove.inference.chat", "cove.inference.resident"),
    "inference/completion": ("cove.inference.chat", "cove.inference.resident"),
    "inference/chat": ("cove.inference.completion", "cove.inference.resident"),
    "inference/research": ("cove.inference.completion", "cove.inference.chat", "cove.inference.resident"),
    "server/context": ("cove.server.completion", "cove.server.actions", "cove.server.app"),
    "server/completion": ("cove.server.actions", "cove.server.app"),
}


@pytest.mark.parametrize(("wing", "forbidden"), WING_RULES.items(), ids=WING_RULES)
def test_wings_keep_their_order(wing: str, forbidden: tuple[str, ...]) -> None:
    crossing = {
        str(path.relative_to(ROOT)): sorted(name for name in imports_of(path) if name.startswith(forbidden))
        for path in product_files(wing)
    }
    crossing = {path: names for path, names in crossing.items() if names}
    assert product_files(wing) and not crossing, crossing


def test_the_rule_sees_relative_imports() -> None:
    assert module_of(ROOT / "cove" / "protocol" / "params.py") == "cove.protocol.params"
    found = imported_by("from ..server import app\nfrom . import codes\nimport cove.agent.daemon\n", "cove.protocol")
    assert {"cove.server", "cove.server.app", "cove.protocol.codes", "cove.agent.daemon"} <= found, found


def test_no_two_classes_of_the_product_share_a_name() -> None:
    defined: dict[str, list[str]] = defaultdict(list)
    for path in product_files("cove", "server", "agent", "inference"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                defined[node.name].append(str(path.relative_to(ROOT)))
    assert not {name: paths for name, paths in defined.items() if len(paths) > 1}


def test_the_architecture_doc_names_every_module_of_the_product() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = [
        str(path.relative_to(ROOT))
        for path in product_files("cove", "server", "agent", "inference")
        if path.name not in ("__init__.py", "__main__.py") and f"`{path.name}`" not in doc
    ]
    assert not unnamed, f"docs/architecture.md does not say where these belong: {unnamed}"
