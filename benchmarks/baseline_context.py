"""The workspace context as it landed before issue 17 (main at 630019b), kept unchanged as the baseline that
benchmarks/crossfile.py measures today's context against: imports joined to the workspace root (relative ones
too), top-level `def`/`class` signatures only, and three parts each dropped whole when it does not fit.

Original description:
Workspace context for completions: what the model cannot see in the document's window.

Three parts, in this order, within a character budget: the signatures (and first docstring lines) of the
definitions the document imports from workspace files, snippets of files edited recently, and the headers of the
functions and classes that enclose the cursor but start before the window. The context goes before the window in
the prompt, so it must stay the same from keystroke to keystroke: every part is keyed by what it depends on (the
import lines, the other files' versions, the window's anchor), and gathering it costs a regular-expression scan and
dictionary lookups on a keystroke; files are parsed only when they change.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter

from cove.server.context.code_context import PYTHON

_IMPORT = re.compile(r"^(?:from\s+([\w.]+)\s+import\s+(?:\(([\w\s,]+)\)|([\w \t,]+))|import\s+([\w.]+))", re.MULTILINE)
_HEADER = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+\w+")
#: Recently edited documents whose snippets may be included.
RECENT_FILES = 2
SNIPPET_LINES = 12


@dataclass
class _Edited:
    text: str
    line: int
    when: float = field(default_factory=time.monotonic)


class BaselineContext:
    """Context for the documents of one workspace; `note_edit` is fed by didChange, `gather` by completions."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.parser = tree_sitter.Parser(PYTHON)
        self._definitions: dict[Path, tuple[float, dict[str, str]]] = {}
        self._imports: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._edited: dict[str, _Edited] = {}

    def note_edit(self, uri: str, text: str, line: int) -> None:
        """Remember where a document was last edited (for other documents' context)."""
        self._edited[uri] = _Edited(text, line)
        if len(self._edited) > 32:
            oldest = min(self._edited, key=lambda key: self._edited[key].when)
            del self._edited[oldest]

    def forget(self, uri: str) -> None:
        self._edited.pop(uri, None)

    def gather(self, uri: str, text: str, anchor_line: int, budget: int) -> str:
        """The context for a completion in `uri` whose window starts at `anchor_line`; at most `budget` chars."""
        if budget <= 0 or not uri.endswith(".py"):
            return ""
        parts = [self._imported(text), self._recent(uri), _enclosing_headers(text, anchor_line)]
        out, used = [], 0
        for part in parts:
            if part and used + len(part) <= budget:
                out.append(part)
                used += len(part)
        return "".join(out)

    def _imported(self, text: str) -> str:
        lines = tuple(match.group(0) for match in _IMPORT.finditer(text[:20_000]))
        cached = self._imports.get(lines)
        if cached is not None:
            return cached
        blocks = []
        for match in _IMPORT.finditer("\n".join(lines)):
            module, names, plain = match.group(1), match.group(2) or match.group(3), match.group(4)
            path = self._module_path(module or plain)
            if path is None:
                continue
            definitions = self._definitions_of(path)
            wanted = [n.strip() for n in names.split(",")] if names else list(definitions)[:8]
            found = [definitions[name] for name in wanted if name in definitions]
            if found:
                blocks.append(f"# {self._relative(path)}\n" + "\n".join(found) + "\n")
        context = "".join(blocks)
        self._imports[lines] = context
        if len(self._imports) > 64:
            self._imports.popitem(last=False)
        return context

    def _recent(self, uri: str) -> str:
        others = sorted(
            ((key, edit) for key, edit in self._edited.items() if key != uri and key.endswith(".py")),
            key=lambda item: -item[1].when,
        )[:RECENT_FILES]
        blocks = []
        for key, edit in others:
            lines = edit.text.split("\n")
            start = max(0, edit.line - SNIPPET_LINES // 2)
            snippet = "\n".join(lines[start : start + SNIPPET_LINES])
            blocks.append(f"# {key.rsplit('/', 1)[-1]} (recently edited)\n{snippet}\n")
        return "".join(blocks)

    def _module_path(self, module: str) -> Path | None:
        if self.root is None:
            return None
        base = self.root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def _definitions_of(self, path: Path) -> dict[str, str]:
        """Top-level functions and classes of a file: their signature lines and the first docstring line."""
        mtime = path.stat().st_mtime
        cached = self._definitions.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        source = path.read_bytes()
        tree = self.parser.parse(source)
        found: dict[str, str] = {}
        for node in tree.root_node.named_children:
            definition = node.child_by_field_name("definition") if node.type == "decorated_definition" else node
            if definition is None or definition.type not in ("function_definition", "class_definition"):
                continue
            name = definition.child_by_field_name("name")
            body = definition.child_by_field_name("body")
            if name is None or body is None or name.text is None:
                continue
            header = source[definition.start_byte : body.start_byte].decode("utf-8", "replace").rstrip()
            doc = ""
            first = body.named_children[0] if body.named_children else None
            if first is not None and first.type == "expression_statement" and first.text:
                line = first.text.decode("utf-8", "replace").strip().split("\n")[0]
                doc = f"\n    {line}" if line.startswith(('"""', "'''", '"', "'")) else ""
            found[name.text.decode()] = f"{header}{doc}\n    ..."
        self._definitions[path] = (mtime, found)
        return found

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if self.root else path.name


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
    return "\n".join(reversed(headers)) + "\n" if headers else ""
