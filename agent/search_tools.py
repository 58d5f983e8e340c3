"""Finding things in the workspace: files (honouring .gitignore), a regex over their text, symbols.

Ignore rules come from every `.gitignore` in the tree (pathspec implements git's matching); `.git` itself is always
skipped. Symbols come from each language's tree-sitter grammar and query (cove/languages.py), so that half-written
code still yields what parses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from cove import languages
from cove.agent.file_tools import ToolError
from cove.agent.safety import Workspace

#: Files larger than this are not parsed for symbols (generated code, bundles).
MAX_SYMBOL_BYTES = 2_000_000


@dataclass(frozen=True)
class Symbol:
    """A definition: a function, method, class, interface, type, module, constant ..."""

    name: str
    kind: str
    path: str
    line: int


def walk_files(workspace: Workspace, start: str = ".") -> Iterator[Path]:
    """Files under `start`, in sorted order, without what .gitignore files exclude."""
    top = workspace.resolve(start)
    rules: list[tuple[Path, pathspec.PathSpec]] = []
    root_ignore = workspace.root / ".gitignore"
    if top != workspace.root and root_ignore.is_file():
        rules.append((workspace.root, _spec(root_ignore)))
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        if (here / ".gitignore").is_file() and not (here == workspace.root and rules):
            rules.append((here, _spec(here / ".gitignore")))
        dirs[:] = sorted(d for d in dirs if d != ".git" and not _ignored(here / d, rules, directory=True))
        for name in sorted(files):
            path = here / name
            if not _ignored(path, rules, directory=False):
                yield path


class GitIgnored:
    """Whether one path is excluded as `walk_files` excludes it (every `.gitignore` from the root down to it, and
    `.git`), for paths met one at a time (a file watcher's); each folder's rules are read once, until `forget`."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.root
        self._specs: dict[Path, pathspec.PathSpec | None] = {}

    def __call__(self, path: Path) -> bool:
        if not path.is_relative_to(self.root):
            return True
        rules: list[tuple[Path, pathspec.PathSpec]] = []
        folder = self.root
        for part in path.relative_to(self.root).parts[:-1]:
            self._add(folder, rules)
            folder = folder / part
            if part == ".git" or _ignored(folder, rules, directory=True):
                return True
        self._add(folder, rules)
        return _ignored(path, rules, directory=False)

    def forget(self) -> None:
        """A `.gitignore` changed: read them again."""
        self._specs.clear()

    def _add(self, folder: Path, rules: list[tuple[Path, pathspec.PathSpec]]) -> None:
        if folder not in self._specs:
            ignore = folder / ".gitignore"
            self._specs[folder] = _spec(ignore) if ignore.is_file() else None
        spec = self._specs[folder]
        if spec is not None:
            rules.append((folder, spec))


def _spec(path: Path) -> pathspec.PathSpec:
    return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8", errors="replace").splitlines())


def _ignored(path: Path, rules: list[tuple[Path, pathspec.PathSpec]], directory: bool) -> bool:
    for base, spec in rules:
        if base in path.parents:
            relative = path.relative_to(base).as_posix() + ("/" if directory else "")
            if spec.match_file(relative):
                return True
    return False


def list_files(workspace: Workspace, path: str = ".", limit: int = 500) -> str:
    """Workspace-relative paths of the files under `path`, at most `limit` of them."""
    names = []
    for number, file in enumerate(walk_files(workspace, path)):
        if number == limit:
            names.append(f"[... more than {limit} files; list a subfolder]")
            break
        names.append(workspace.relative(file))
    return "\n".join(names) or f"no files under {path}"


def search(workspace: Workspace, pattern: str, path: str = ".", limit: int = 100) -> str:
    """Lines matching the regular expression `pattern`, as `file:line: text`."""
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ToolError(f"invalid regular expression {pattern!r}: {err}") from err
    hits: list[str] = []
    for file in walk_files(workspace, path):
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable files have no lines to match
        for number, line in enumerate(text.split("\n"), start=1):
            if regex.search(line):
                hits.append(f"{workspace.relative(file)}:{number}: {line.strip()[:200]}")
                if len(hits) == limit:
                    return "\n".join([*hits, f"[... stopped at {limit} matches; narrow the pattern or the path]"])
    return "\n".join(hits) or f"no match for {pattern!r}"


def symbols_of(workspace: Workspace, file: Path) -> list[Symbol]:
    """The definitions in a file of any language Cove has a grammar for (none for the rest)."""
    grammar = languages.grammar_for(file.name)
    if grammar is None:
        return []
    try:
        if file.stat().st_size > MAX_SYMBOL_BYTES:
            return []
        source = file.read_bytes()
    except OSError:
        return []
    found = grammar.symbols(grammar.parse(source), source).definitions
    return [Symbol(d.name, d.kind, workspace.relative(file), d.start_line + 1) for d in found]


def list_symbols(workspace: Workspace, path: str) -> str:
    """The definitions of one source file, with their lines."""
    file = workspace.resolve(path)
    if not file.is_file():
        raise ToolError(f"no such file: {path}")
    if languages.grammar_for(file.name) is None:
        raise ToolError(f"no grammar for {path}: symbols are listed for {', '.join(languages.names())} files")
    rows = [f"{s.line:>6}  {s.kind} {s.name}" for s in symbols_of(workspace, file)]
    return "\n".join(rows) or f"no definitions in {path}"


def find_symbol(workspace: Workspace, name: str) -> str:
    """Where a definition named `name` is, in the workspace's source files of every language."""
    rows = [
        f"{s.path}:{s.line}: {s.kind} {s.name}"
        for file in walk_files(workspace)
        if languages.language_of(file.name) is not None
        for s in symbols_of(workspace, file)
        if s.name == name
    ]
    return "\n".join(rows) or f"no definition named {name!r}"
