"""Workspace context for completions: what the model cannot see in the document's window.

Sources, each of which `[completion] context_sources` names: `imports`, the definitions the document imports from
workspace files (Python: signatures, first docstring lines, constants and aliases, the members of imported classes
that the code uses; JavaScript and TypeScript: script_imports.py); `index`, the definitions of other names used near
the cursor from the project's index (any language); `neighbours`, the index's chunks most like the window (BM25);
`recent`, the ring of code the user viewed, yanked and saved that shares names with the code near the cursor, and
snippets of files of the same language edited recently (recent_code.py); `scopes`, the headers of the functions and
classes that enclose the window's start.

Each source gives items (context_items.py), chosen most useful first — the enclosing headers, then what the code
near the cursor uses, then the seen code it shares names with, the neighbours, recent edits, what the rest of the
file uses — and an item that does not fit is cut to its first line rather than dropped with its whole part. Chosen
items are placed in a fixed order, because the context goes before the window in the prompt and must stay the same
from keystroke to keystroke: a block changes only when what it depends on (the import lines, the other files'
versions, the names used near the cursor, the ring, the window's anchor) changes. Gathering costs regular-expression
scans and dictionary lookups on a keystroke; files are parsed only when they change, and the index is read from
memory.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import tree_sitter
from pygls.uris import to_fs_path

from cove import languages
from cove.protocol.jobs import PromptContext
from cove.server.context.code_context import PYTHON
from cove.server.context.context_items import (
    FILE,
    HEADERS,
    IMPORTS,
    INDEXED,
    LOOKED_UP,
    NEAR,
    NEAR_AFTER,
    NEAR_BEFORE,
    NEIGHBOUR,
    NEIGHBOURS,
    OTHER,
    SCOPE,
    ContextItem,
    as_files,
    choose,
    line_end,
    names_near,
    render,
)
from cove.server.context.python_definitions import TopLevelDefinition, definitions
from cove.server.context.python_imports import Resolved, resolve
from cove.server.context.recent_code import RecentCode
from cove.server.context.script_imports import SCRIPT_LANGUAGES, ScriptImports

#: Finds what an import names: (dotted module, importing file, workspace root) -> where it is.
ImportResolver = Callable[[str, Path | None, Path | None], Resolved]

#: Definitions of names from the project's index: names -> (name, workspace-relative path, first line, text) each.
IndexLookup = Callable[[list[str]], Sequence[tuple[str, str, int, str]]]

#: The index's chunks most like a text (BM25): (a key that stays while the query may, the query, the file to leave
#: out) -> (workspace-relative path, first line, text) each, best first.
NeighbourSearch = Callable[[str, str, str | None], Sequence[tuple[str, int, str]]]

#: The context's sources, each of which `[completion] context_sources` can leave out.
SOURCES = frozenset({"imports", "index", "neighbours", "recent", "scopes"})

#: Import statements anywhere in a file (indented ones too: under `if TYPE_CHECKING:`, inside functions).
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(?:\(([\w\s,]+)\)|([\w \t,]+))|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)
_HEADER = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+\w+")
_WORD = re.compile(r"[A-Za-z_]\w*")
#: How much of a file is scanned for imports.
SCAN_CHARS = 200_000
#: Names near the cursor looked up in the project's index, nearest first.
INDEX_NAMES = 24
#: Neighbours (BM25) of the window included, their lines at most, and the query: the window's last characters
#: before the cursor's line.
NEIGHBOUR_CHUNKS, NEIGHBOUR_LINES, NEIGHBOUR_QUERY_CHARS = 3, 12, 2000
#: Definitions listed for a module imported whole (`import pkg.mod`) that the file does not use.
UNUSED_PER_MODULE = 8


@dataclass(frozen=True)
class Imported:
    """One name an import statement binds: `module`'s `name` (None: the module itself) as `alias`."""

    module: str
    name: str | None
    alias: str


def parse_imports(text: str) -> list[Imported]:
    """What the import statements of `text` bind, in order."""
    found = []
    for match in _import_statements(text):
        module, listed, plain = match.group(1), match.group(2) or match.group(3), match.group(4)
        for entry in (listed or plain or "").split(","):
            words = entry.split()
            if not words:
                continue
            alias = words[2] if len(words) == 3 and words[1] == "as" else words[0]
            if module:
                found.append(Imported(module, words[0], alias))
            else:
                found.append(Imported(words[0], None, alias if len(words) == 3 else words[0].split(".")[0]))
    return found


def _import_statements(text: str) -> Iterator[re.Match[str]]:
    """The import statements in the first SCAN_CHARS of `text`: the lines where the word `import` occurs, matched
    from their start (a plain scan with the pattern would try it at every position of a long file)."""
    limit = min(len(text), SCAN_CHARS)
    at = text.find("import", 0, limit)
    while at != -1:
        match = _IMPORT.match(text, text.rfind("\n", 0, at) + 1, limit)
        if match is not None and match.end() > at:
            yield match
            at = match.end()
        else:
            at = text.find("\n", at)
            if at == -1:
                return
        at = text.find("import", at, limit)


@dataclass(frozen=True)
class _Candidate:
    """An imported definition that may go into the context: where it is from and what binds it here."""

    heading: str
    definition: TopLevelDefinition
    alias: str
    #: Bound as a module attribute (`import mod`, `mod.name`) rather than by name.
    attribute: bool


class WorkspaceContext:
    """Context for the documents of one workspace: fed by the editor's edits, views, yanks and saves (`recent`),
    read by completions (`gather`)."""

    def __init__(
        self,
        root: Path | None,
        resolve_import: ImportResolver = resolve,
        index: IndexLookup | None = None,
        neighbours: NeighbourSearch | None = None,
        sources: frozenset[str] = SOURCES,
    ) -> None:
        self.root = root
        self.resolve_import = resolve_import
        #: Definitions by name from the project's index (any language, any file); answers from memory.
        self.index = index
        #: The index's BM25 neighbours of a window; answers from memory.
        self.neighbours = neighbours
        #: The sources used (`[completion] context_sources`).
        self.sources = sources
        #: The ring of code the user viewed, yanked and saved, and the places last edited.
        self.recent = RecentCode()
        self.parser = tree_sitter.Parser(PYTHON)
        #: Imported definitions of JavaScript and TypeScript documents.
        self.scripts = ScriptImports(root, self._relative)
        self._definitions: dict[Path, tuple[float, dict[str, TopLevelDefinition]]] = {}
        self._imports: OrderedDict[tuple[str, ...], tuple[list[_Candidate], frozenset[str]]] = OrderedDict()
        self._scopes: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._neighbour_items: OrderedDict[str, tuple[object, list[ContextItem]]] = OrderedDict()
        self._paths: dict[str, str] = {}

    def note_edit(self, uri: str, text: str, line: int) -> None:
        """Remember where a document was last edited (for other documents' context)."""
        self.recent.note_edit(uri, text, line)

    def forget(self, uri: str) -> None:
        self.recent.forget(uri)

    def gather(self, uri: str, text: str, anchor_line: int, budget: int, cursor: int | None = None) -> str:
        """The context as text: `gather_prompt`'s (commented blocks under their files' names)."""
        return self.gather_prompt(uri, text, anchor_line, budget, cursor).text

    def gather_prompt(
        self, uri: str, text: str, anchor_line: int, budget: int, cursor: int | None = None
    ) -> PromptContext:
        """The context for a completion in `uri` whose window starts at `anchor_line` (the cursor at offset
        `cursor`; without it, the window's first lines count as near it); at most `budget` characters. Python,
        JavaScript and TypeScript get every source; the other languages with a grammar all but imported definitions;
        the rest none."""
        language = languages.language_of(uri)
        if budget <= 0 or language is None:
            return PromptContext("")
        near = names_near(text, anchor_line, cursor)
        items: list[ContextItem] = []
        if "recent" in self.sources:
            common = languages.common_words(language)
            rare = {name: distance for name, distance in near.items() if name not in common}
            last = text.count("\n", 0, cursor) if cursor is not None else anchor_line + NEAR_BEFORE
            window = range(anchor_line, last + NEAR_AFTER + 1)
            items += self.recent.items(uri, language, rare, window, self._label)
        imported: list[ContextItem] = []
        if language == "python":
            if "imports" in self.sources:
                imported = list(self._imported(uri, text, near))
            scopes = _enclosing_headers(text, anchor_line)
        else:
            scopes = self._enclosing(uri, text, anchor_line, language)
            if language in SCRIPT_LANGUAGES and "imports" in self.sources:
                importer = Path(to_fs_path(uri) or uri) if uri.startswith("file:") else None
                imported = list(self.scripts.items(importer, text, near))
        items += imported
        if self.index is not None and "index" in self.sources:
            items += self._indexed(uri, near, {item.name for item in imported})
        if self.neighbours is not None and "neighbours" in self.sources:
            items += self._neighbours(uri, text, anchor_line, cursor, {item.text for item in items})
        if scopes and "scopes" in self.sources:
            items.append(ContextItem(SCOPE, (HEADERS, 0), 0, "", scopes))
        comment = languages.grammar(language).comment
        blocks = choose(items, budget, comment)
        return PromptContext(render(blocks, comment), as_files(blocks, self._label(uri)))

    def _neighbours(
        self, uri: str, text: str, anchor_line: int, cursor: int | None, shown: set[str]
    ) -> Iterator[ContextItem]:
        """The chunks of other files that best match the window's text before the cursor's line (BM25 over the
        project's index), asked once per window anchor so that the block changes only when the anchor moves."""
        assert self.neighbours is not None
        start = line_end(text, 0, anchor_line)
        end = text.rfind("\n", start, cursor if cursor is not None else line_end(text, start, NEAR_BEFORE)) + 1
        query = text[max(start, end - NEIGHBOUR_QUERY_CHARS) : end]
        if not query.strip():
            return
        own, key = self._own(uri), f"{uri}#{anchor_line}"
        found = self.neighbours(key, query, own or None)
        cached = self._neighbour_items.get(key)
        if cached is None or cached[0] is not found:  # filtered once per answer, not on every keystroke
            common = languages.common_words(languages.language_of(uri) or "")
            asked = {word for word in _WORD.findall(query) if len(word) >= 3} - common
            chosen = [
                ContextItem(NEIGHBOUR, (NEIGHBOURS, 0), 0, path, "\n".join(rows), rows[0])
                for path, _, chunk in found
                if path != own and asked.intersection(_WORD.findall(chunk))
                for rows in [chunk.split("\n")[:NEIGHBOUR_LINES]]
            ]  # BM25 ranks any chunk with any word: one in common that is not a keyword or a builtin at least
            cached = self._neighbour_items[key] = (found, chosen)
            if len(self._neighbour_items) > 64:
                self._neighbour_items.popitem(last=False)
        fresh = [item for item in cached[1] if item.text not in shown][:NEIGHBOUR_CHUNKS]
        for order, item in enumerate(fresh):
            yield dataclasses.replace(item, order=(NEIGHBOURS, order), distance=order)

    def _own(self, uri: str) -> str:
        """The document's path relative to the root ("" when it is not a file)."""
        own = self._paths.get(uri)
        if own is None:
            own = self._paths[uri] = self._relative(Path(to_fs_path(uri) or uri)) if uri.startswith("file:") else ""
            if len(self._paths) > 1024:
                self._paths.clear()
        return own

    def _label(self, uri: str) -> str:
        return self._own(uri) or uri.rsplit("/", 1)[-1]

    def _indexed(self, uri: str, near: dict[str, int], imported: set[str]) -> Iterator[ContextItem]:
        """Definitions from the project's index of the names used near the cursor that neither the imports nor this
        file define, and that one file only defines (a name defined in several files says little of which one the
        code means: measured, such guesses distracted the model), nearest first."""
        assert self.index is not None
        own = self._own(uri)
        common = languages.common_words(languages.language_of(uri) or "")
        names = [
            name
            for name in sorted(near, key=near.__getitem__)
            if len(name) >= 3 and name not in imported and name not in common
        ][:INDEX_NAMES]
        by_name: dict[str, list[tuple[str, int, str, str]]] = {}
        for name, path, line, text in self.index(names):
            if path != own and name in near:
                by_name.setdefault(name, []).append((path, line, name, text))
        found = sorted(entries[0] for entries in by_name.values() if len({entry[0] for entry in entries}) == 1)
        for order, (path, _, name, text) in enumerate(found):  # placed by file and line: stable
            yield ContextItem(LOOKED_UP, (INDEXED, order), near[name], path, text, text.split("\n", 1)[0], name)

    def _enclosing(self, uri: str, text: str, anchor_line: int, language: str) -> str:
        """The header lines of the definitions around the window's start, from the language's grammar (parsed again
        only when the anchor moves or the text above it changes)."""
        above = line_end(text, 0, anchor_line)
        key = (uri, anchor_line, hash(text[:above]))
        cached = self._scopes.get(key)
        if cached is not None:
            return cached
        grammar = languages.grammar(language)
        source = text.encode("utf-8")
        scopes = grammar.scopes_at(grammar.parse(source), source, anchor_line) if anchor_line > 0 else []
        headers = "\n".join(d.header for d in reversed(scopes) if d.start_line < anchor_line)
        self._scopes[key] = headers
        if len(self._scopes) > 64:
            self._scopes.popitem(last=False)
        return headers

    def _imported(self, uri: str, text: str, near: dict[str, int]) -> Iterator[ContextItem]:
        candidates, in_file = self._candidates(uri, text)
        groups: dict[str, int] = {}  # one block per file, files in the order they are first imported
        for index, candidate in enumerate(candidates):
            group = groups.setdefault(candidate.heading, len(groups))
            definition, alias = candidate.definition, candidate.alias
            used_name = definition.name if candidate.attribute else alias
            if candidate.attribute and alias not in near and alias not in in_file:
                rank = OTHER
            elif used_name in near:
                rank = NEAR
            elif used_name in in_file:
                rank = FILE
            else:
                rank = OTHER
            text = definition.render(near)
            short = definition.header() if "\n" in text else ""
            order = (IMPORTS, group * 10_000 + index)
            yield ContextItem(rank, order, near.get(used_name, 0), candidate.heading, text, short, used_name)

    def _candidates(self, uri: str, text: str) -> tuple[list[_Candidate], frozenset[str]]:
        """The definitions the document's imports bring in, and the names the document uses (cached by its import
        lines: they change far less often than the text)."""
        importer = Path(to_fs_path(uri) or uri) if uri.startswith("file:") else None
        lines = tuple(match.group(0) for match in _import_statements(text))
        key = (str(importer.parent) if importer else "", *lines)  # relative imports depend on the folder
        cached = self._imports.get(key)
        if cached is not None:
            return cached
        candidates: dict[tuple[str, str], _Candidate] = {}
        for imported in parse_imports("\n".join(lines)):
            for candidate in self._bound(imported, importer):
                candidates.setdefault((candidate.heading, candidate.definition.name), candidate)
        result = (list(candidates.values()), frozenset(_WORD.findall(text[:SCAN_CHARS])))
        self._imports[key] = result
        if len(self._imports) > 64:
            self._imports.popitem(last=False)
        return result

    def _bound(self, imported: Imported, importer: Path | None) -> list[_Candidate]:
        found = self.resolve_import(imported.module, importer, self.root)
        module = self._definitions_of(found.file) if found.file is not None else {}
        if imported.name is not None and imported.name in module and found.file is not None:
            return [_Candidate(self._relative(found.file), module[imported.name], imported.alias, False)]
        # `import pkg.mod`, or `from . import segment`: a module, whose definitions are its attributes
        file = found.file if imported.name is None else found.submodule(imported.name)
        if file is None and imported.name is not None and found.file is not None:
            return self._reexported(found.file, imported)
        if file is None:
            return []
        heading = self._relative(file)
        return [_Candidate(heading, item, imported.alias, True) for item in self._definitions_of(file).values()]

    def _reexported(self, init: Path, imported: Imported) -> list[_Candidate]:
        """A name a package's module imports from another (`from ._client import Client` in `__init__.py`)."""
        for inner in parse_imports(init.read_text(errors="replace")):
            if inner.alias == imported.name and inner.name is not None:
                found = self.resolve_import(inner.module, init, self.root)
                module = self._definitions_of(found.file) if found.file is not None else {}
                if found.file is not None and inner.name in module:
                    return [_Candidate(self._relative(found.file), module[inner.name], imported.alias, False)]
        return []

    def _definitions_of(self, path: Path) -> dict[str, TopLevelDefinition]:
        """A file's top-level definitions (parsed again when the file changes)."""
        try:
            mtime = path.stat().st_mtime
            cached = self._definitions.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
            found = definitions(path.read_bytes(), self.parser)
        except OSError:
            return {}
        self._definitions[path] = (mtime, found)
        return found

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if self.root and path.is_relative_to(self.root) else path.name


def _enclosing_headers(text: str, anchor_line: int) -> str:
    """Lines opening the functions and classes that enclose the window's start but begin before it."""
    if anchor_line <= 0:
        return ""
    lines = text.split("\n", anchor_line + 1)[: anchor_line + 1]
    first = lines[anchor_line] if anchor_line < len(lines) else ""
    indent = len(first) - len(first.lstrip()) if first.strip() else 10_000
    headers = []
    for line in reversed(lines[max(0, anchor_line - 2000) : anchor_line]):
        match = _HEADER.match(line)
        if match and len(match.group(1)) < indent:
            headers.append(line)
            indent = len(match.group(1))
            if indent == 0:
                break
    return "\n".join(reversed(headers)) if headers else ""
