"""Where a Python import points, as Python would find it in a workspace (no interpreter, no site-packages).

A relative import (`from .segment import Segment`, `from ..console import Console`) is resolved against the
importing file's package; an absolute one against the places Python would put on `sys.path` for code in this
workspace: the folder above the importing file's top package, the workspace root, and `src/` (the src layout).
Packages without `__init__.py` (namespace packages) count. `from . import segment` names a submodule when there is
one; otherwise the name is looked up in the package's `__init__.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Resolved:
    """What a dotted name found: the file defining it (a module, or a package's `__init__.py`) and, for a package,
    its folder (where its submodules are; a namespace package has a folder and no file)."""

    file: Path | None
    folder: Path | None

    def submodule(self, name: str) -> Path | None:
        """`name` as a submodule of this package (`from . import segment`), if there is one."""
        return _file_in(self.folder, [name]).file if self.folder is not None else None


def resolve(module: str, importer: Path | None, root: Path | None) -> Resolved:
    """Where `module` (dotted, possibly relative) imported from the file `importer` is."""
    dots = len(module) - len(module.lstrip("."))
    parts = [part for part in module[dots:].split(".") if part]
    if dots:
        if importer is None:
            return Resolved(None, None)
        package = importer.parent
        for _ in range(dots - 1):
            package = package.parent
        if root is not None and not package.is_relative_to(root):
            return Resolved(None, None)  # above the workspace: not code of this project
        return _file_in(package, parts)
    for base in search_roots(importer, root):
        found = _file_in(base, parts)
        if found.file is not None or found.folder is not None:
            return found
    return Resolved(None, None)


def search_roots(importer: Path | None, root: Path | None) -> list[Path]:
    """The folders an absolute import is looked for in, first match wins (no duplicates)."""
    roots: list[Path] = []
    if importer is not None:
        top = importer.parent
        while (top / "__init__.py").is_file() and (root is None or top != root):
            top = top.parent
        roots.append(top)
    if root is not None:
        roots += [root, root / "src"]
    unique: list[Path] = []
    for candidate in roots:
        if candidate not in unique and candidate.is_dir():
            unique.append(candidate)
    return unique


def _file_in(base: Path, parts: list[str]) -> Resolved:
    target = base.joinpath(*parts)
    if parts and target.with_suffix(".py").is_file():
        return Resolved(target.with_suffix(".py"), None)
    if target.is_dir():
        init = target / "__init__.py"
        return Resolved(init if init.is_file() else None, target)
    return Resolved(None, None)
