"""Imported definitions for JavaScript and TypeScript, as Node and TypeScript resolve a relative specifier.

`import {Client, get as fetch} from "./client"`, `import * as models from "../models"`, `import Server from
"./server.js"`, `export {Codec} from "./codec"` and CommonJS's `const {Client} = require("./client")` / `const
client_1 = require("./client")` (what TypeScript compiles to) bind names from another file of the workspace. A
specifier is tried as written, then with each of the languages' extensions, then as a folder's `index` file; a `.js`
specifier also names the `.ts` file it is compiled from (TypeScript's ESM style). A bare specifier is mapped by the
nearest tsconfig.json's `paths` and `baseUrl` (ts_paths.py); a package is not followed: its code is not the
project's, and the index has what the project defines. A module shows its
top-level definitions by their first line, a class or an interface also its members' first lines (those the code
near the cursor uses first); names bound whole (`* as models`, `client_1`) count where the code uses their
attributes (`models.User`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cove import languages
from cove.server.context.context_items import FILE, IMPORTS, NEAR, OTHER, ContextItem
from cove.server.context.ts_paths import mapping_for

SCRIPT_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})
EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
#: A JavaScript file's imports load JavaScript (Node), a TypeScript file's the sources and declarations first.
SCRIPT_EXTENSIONS = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".d.ts")
#: Members of a class or interface shown, at most; how much of a document is scanned for imports.
MEMBERS, SCAN_CHARS = 8, 200_000
_STATEMENT = re.compile(
    r"""^[ \t]*(?:import|export)[ \t]+(?:type[ \t]+)?(?P<clause>[\w$*{}\s,]+?)[ \t\n]*from[ \t]*"""
    r"""['"](?P<spec>[^'"\n]+)['"]"""
    r"""|(?:const|let|var)[ \t]+(?P<bound>[\w$]+|\{[\w$\s,:]+\})[ \t]*=[ \t]*require\([ \t]*"""
    r"""['"](?P<required>[^'"\n]+)['"]""",
    re.MULTILINE,
)
_WORD = re.compile(r"[A-Za-z_$][\w$]*")
#: A clause whose names go on the next lines: `import {`, `export type {`.
_OPEN_CLAUSE = re.compile(r"(?:import|export)\s+(?:type\s+)?\{[^}]*$")


@dataclass(frozen=True)
class Binding:
    """A name an import binds: `name` of the module at `specifier` (None: the module itself) as `alias`."""

    specifier: str
    name: str | None
    alias: str


def parse_script_imports(text: str) -> list[Binding]:
    """What the import statements and requires of `text` bind, in order."""
    found: list[Binding] = []
    for match in _STATEMENT.finditer(text):
        spec = match.group("spec") or match.group("required")
        clause = (match.group("clause") or match.group("bound") or "").strip()
        named = re.search(r"\{([^}]*)\}", clause)
        if named is not None:
            for entry in named.group(1).split(","):
                words = entry.replace(":", " as ").split()
                words = words[1:] if words[:1] == ["type"] else words
                if words:
                    found.append(Binding(spec, words[0], words[-1] if "as" in words else words[0]))
            clause = clause[: named.start()] + clause[named.end() :]
        star = re.search(r"\*\s*as\s+([\w$]+)", clause)
        if star is not None:
            found.append(Binding(spec, None, star.group(1)))
        elif (default := clause.strip(" ,")) and _WORD.fullmatch(default):
            # `import Server from` (a default export) or `const client_1 = require(...)` (the module): the module,
            # whose definitions the code reaches as attributes or by the default's own name
            found.append(Binding(spec, None, default))
    return found


def statement_lines(text: str) -> tuple[str, ...]:
    """The import statements and requires of `text` (its first SCAN_CHARS) as their lines, in order — found by plain
    searches for the words that start them, not a pattern tried at every position: they are the cache key of what
    the imports bind, so typing elsewhere costs only these searches."""
    limit = min(len(text), SCAN_CHARS)
    found: dict[int, str] = {}
    for word in ("import", "export", "require("):
        at = text.find(word, 0, limit)
        while at != -1:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at, limit)
            end = limit if end == -1 else end
            line = text[start:end]
            stripped = line.lstrip()
            if _OPEN_CLAUSE.match(stripped):  # `import {` ... `} from "./x"` over several lines
                close = text.find("}", end, limit)
                after = text.find("\n", close, limit) if close != -1 else -1
                end = limit if after == -1 else after
                line = text[start:end]
            if (
                stripped.startswith("import")
                or (stripped.startswith("export") and "from" in line)
                or word == "require("
            ):
                found.setdefault(start, line)
            at = text.find(word, max(end, at + 1), limit)
    return tuple(found[start] for start in sorted(found))


def resolve_specifier(specifier: str, importer: Path, root: Path | None) -> Path | None:
    """The workspace file a specifier names from `importer`: a relative one as Node and TypeScript resolve it, a bare
    one through the nearest tsconfig's `paths` and `baseUrl`; None for a package or a file outside."""
    if specifier.startswith((".", "/")):
        return _file_at((importer.parent / specifier).resolve(), importer, root)
    mapping = mapping_for(importer, root)
    for base in mapping.candidates(specifier) if mapping is not None else []:
        found = _file_at(base.resolve(), importer, root)
        if found is not None:
            return found
    return None


def _file_at(base: Path, importer: Path, root: Path | None) -> Path | None:
    """The file a resolved specifier path names: as written, with an extension, or a folder's index file."""
    order = SCRIPT_EXTENSIONS if importer.suffix in (".js", ".jsx", ".mjs", ".cjs") else EXTENSIONS
    candidates = [base, *(base.with_name(base.name + extension) for extension in order)]
    if base.suffix in (".js", ".jsx", ".mjs", ".cjs"):
        candidates += [base.with_suffix(extension) for extension in (".ts", ".tsx", ".mts", ".cts")]
    candidates += [base / f"index{extension}" for extension in order]
    for candidate in candidates:
        if candidate.is_file() and (root is None or candidate.is_relative_to(root)):
            return candidate
    return None


@dataclass(frozen=True)
class ScriptDefinition:
    """A top-level definition of a module: its name and what is shown of it."""

    name: str
    header: str
    members: tuple[tuple[str, str], ...]

    def render(self, near: dict[str, int]) -> str:
        """The header, and a class's members (those used near the cursor first) by their first lines."""
        keep = set(sorted(self.members, key=lambda member: near.get(member[0], 10_000))[:MEMBERS])
        return "\n".join([self.header, *(line for name, line in self.members if (name, line) in keep)])


def module_definitions(path: Path, source: bytes) -> dict[str, ScriptDefinition]:
    """The top-level definitions of a JavaScript or TypeScript file, by name."""
    grammar = languages.grammar_for(path.name)
    if grammar is None:
        return {}
    every = grammar.symbols(grammar.parse(source), source).definitions
    found: dict[str, ScriptDefinition] = {}
    for definition in every:
        parent = definition.node.parent
        while parent is not None and parent.type in ("export_statement", "lexical_declaration", "variable_declaration"):
            parent = parent.parent
        if parent is None or parent.type != "program" or definition.name in found:
            continue
        members: tuple[tuple[str, str], ...] = ()
        if definition.kind in ("class", "interface"):
            members = tuple(
                (inner.name, inner.header)
                for inner in every
                if definition.start_line < inner.start_line <= definition.end_line and inner.kind != "class"
            )
        found[definition.name] = ScriptDefinition(definition.name, definition.header, members)
    return found


@dataclass(frozen=True)
class _Imported:
    """A definition an import brings in: where from, what binds it, the name the code uses it by."""

    heading: str
    definition: ScriptDefinition
    used: str
    #: The module's binding when it is bound whole (`models` of `* as models`), else "".
    whole: str
    order: int


class ScriptImports:
    """Imported definitions for the JavaScript and TypeScript documents of one workspace: worked out again only when
    the document's import lines change (a keystroke costs a scan for the words that start them), the modules parsed
    again only when they change."""

    def __init__(self, root: Path | None, relative: Callable[[Path], str]) -> None:
        self.root = root
        self.relative = relative
        self._modules: dict[Path, tuple[float, dict[str, ScriptDefinition]]] = {}
        self._imported: OrderedDict[tuple[str, ...], tuple[list[_Imported], frozenset[str]]] = OrderedDict()

    def items(self, importer: Path | None, text: str, near: dict[str, int]) -> Iterator[ContextItem]:
        """Context items for the definitions `text`'s imports bring in (ranked as Python's are: used near the
        cursor, used in the file, the rest)."""
        if importer is None:
            return
        imported, in_file = self._bound(importer, text)
        for entry in imported:
            definition, used = entry.definition, entry.used
            unused_module = entry.whole and entry.whole not in near and entry.whole not in in_file
            rank = OTHER if unused_module else NEAR if used in near else FILE if used in in_file else OTHER
            rendered = definition.render(near)
            short = definition.header if "\n" in rendered else ""
            order = (IMPORTS, entry.order)
            yield ContextItem(rank, order, near.get(used, 0), entry.heading, rendered, short, used)

    def _bound(self, importer: Path, text: str) -> tuple[list[_Imported], frozenset[str]]:
        """What the import statements bind, and the words of the document (cached by the statements' lines)."""
        lines = statement_lines(text)
        key = (str(importer), *lines)
        cached = self._imported.get(key)
        if cached is not None:
            return cached
        groups: dict[Path, int] = {}
        seen: set[tuple[Path, str]] = set()
        found: list[_Imported] = []
        for binding in parse_script_imports("\n".join(lines)):
            file = resolve_specifier(binding.specifier, importer, self.root)
            if file is None:
                continue
            group = groups.setdefault(file, len(groups))
            module = self._definitions(file)
            if binding.name is not None:
                chosen = [(module[binding.name], binding.alias)] if binding.name in module else []
            else:  # the module bound whole: its definitions as attributes, or the default export by its name
                chosen = [(definition, definition.name) for definition in module.values()]
            for definition, used in chosen:
                if (file, definition.name) not in seen:
                    seen.add((file, definition.name))  # placed by file in import order, then as imported
                    whole = binding.alias if binding.name is None else ""
                    order = group * 1_000_000 + len(found)
                    found.append(_Imported(self.relative(file), definition, used, whole, order))
        result = (found, frozenset(_WORD.findall(text[:SCAN_CHARS])))
        self._imported[key] = result
        if len(self._imported) > 64:
            self._imported.popitem(last=False)
        return result

    def _definitions(self, path: Path) -> dict[str, ScriptDefinition]:
        try:
            mtime = path.stat().st_mtime
            cached = self._modules.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
            found = module_definitions(path, path.read_bytes())
        except OSError:
            return {}
        self._modules[path] = (mtime, found)
        return found
