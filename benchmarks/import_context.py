"""How much of what a file imports reaches the completion prompt, on a real package nobody here wrote.

A copy of pip's vendored `rich` (modules that import each other with `from .segment import Segment`) is put one
level below a workspace root, as a user's checkout would have it. For every module, the names it imports from other
modules of the package are counted, and how many of them have their definition in the workspace context that Cove
builds for a completion there (budget --budget characters, the default `[completion] context_chars`). Two runs in
one process on the same files: `cove`, imports resolved as Python does (python_imports.py), and `root-only`, the
earlier lookup that joined the dotted name to the workspace root.

    .venv/bin/python benchmarks/import_context.py [--budget 1200]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

import pip._vendor.rich as vendored

from cove.server.context.python_imports import Resolved, resolve
from cove.server.context.workspace_context import ImportResolver, WorkspaceContext, parse_imports

#: Names defined in the context: functions, classes, constants and aliases.
_NAME = re.compile(r"^(?:(?:async\s+def|def|class)\s+(\w+)|(\w+)\s*(?::[^=\n]*)?=)", re.MULTILINE)


def root_only(module: str, importer: Path | None, root: Path | None) -> Resolved:
    """The lookup Cove had: the dotted name (dots and all) joined to the workspace root."""
    if root is None:
        return Resolved(None, None)
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return Resolved(candidate, None)
    return Resolved(None, None)


def imported_names(text: str) -> list[str]:
    """The names a module imports from relative modules (`from .x import a, b`; indented imports too)."""
    return [i.alias for i in parse_imports(text) if i.module.startswith(".") and i.name is not None]


def coverage(root: Path, files: list[Path], budget: int, lookup: ImportResolver) -> tuple[int, int, int]:
    """(names imported, names whose definition is in the context, modules with any imported definition)."""
    context = WorkspaceContext(root, lookup)
    wanted = shown = modules = 0
    for path in files:
        text = path.read_text()
        names = imported_names(text)
        if not names:
            continue
        gathered = context.gather(path.as_uri(), text, 0, budget)
        defined = {a or b for a, b in _NAME.findall(gathered)}
        wanted += len(names)
        hits = sum(name in defined for name in names)
        shown += hits
        modules += hits > 0
    return wanted, shown, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=1200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copytree(Path(vendored.__file__).parent, root / "rich", ignore=shutil.ignore_patterns("__pycache__"))
        files = sorted((root / "rich").glob("*.py"))
        importing = [p for p in files if imported_names(p.read_text())]
        print(f"{len(files)} modules of rich, {len(importing)} import from each other; context budget {args.budget}")
        print(f"\n{'run':<10} {'names':>6} {'in prompt':>10} {'share':>7} {'modules reached':>16}")
        for name, lookup in (("root-only", root_only), ("cove", resolve)):
            wanted, shown, modules = coverage(root, importing, args.budget, lookup)
            print(f"{name:<10} {wanted:>6} {shown:>10} {shown / max(1, wanted):>7.0%} {modules:>9}/{len(importing)}")


if __name__ == "__main__":
    main()
