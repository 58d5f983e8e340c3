"""Workspace context for completions, over real files: imported definitions, recent edits, enclosing headers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cove.server.completion.stats import SuggestionStats, load, report
from cove.server.context.workspace_context import WorkspaceContext

HELPERS = '''"""Helpers."""
import re


def parse_header(line: str, strict: bool = False) -> dict[str, str]:
    """Split a 'Name: value' header line."""
    name, _, value = line.partition(":")
    return {name: value.strip()}


class Registry:
    def add(self, item):
        pass


def _private():
    return 1
'''

MAIN = """from pkg.helpers import parse_header, Registry
import os


class Server:
    def handle(self, request):
        for line in request.lines:
            headers = parse_
"""


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "helpers.py").write_text(HELPERS)
    return tmp_path


def test_imported_definitions_recent_edits_and_enclosing_headers(tmp_path: Path) -> None:
    context = WorkspaceContext(workspace(tmp_path))
    context.note_edit("file:///w/notes.py", "a = 1\nb = 2\nTOKEN_LIMIT = 4096\n", 2)
    text = context.gather("file:///w/main.py", MAIN, anchor_line=6, budget=2000)
    assert text.startswith("# pkg/helpers.py\ndef parse_header(line: str, strict: bool = False) -> dict[str, str]:")
    assert '    """Split a \'Name: value\' header line."""\n    ...' in text
    assert "class Registry:" in text and "_private" not in text  # only what is imported
    assert "# notes.py (recently edited)\na = 1\nb = 2\nTOKEN_LIMIT = 4096" in text
    assert text.endswith("class Server:\n    def handle(self, request):\n")  # the window starts inside handle()
    assert context.gather("file:///w/main.py", MAIN + "h", 6, 2000) == text  # stable while typing
    assert context.gather("file:///w/main.py", MAIN, 0, 2000).count("class Server") == 0
    assert len(context.gather("file:///w/main.py", MAIN, 6, 150)) <= 150
    assert context.gather("file:///w/main.py", MAIN, 6, 0) == ""


def test_a_changed_module_is_parsed_again(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    context = WorkspaceContext(root)
    assert "parse_header(line: str, strict" in context.gather("file:///w/main.py", MAIN, 0, 2000)
    helpers = root / "pkg" / "helpers.py"
    helpers.write_text(HELPERS.replace("strict: bool = False", "lenient: bool = True"))
    later = time.time() + 5
    os.utime(helpers, (later, later))
    context._imports.clear()
    assert "parse_header(line: str, lenient" in context.gather("file:///w/main.py", MAIN, 0, 2000)


def test_suggestion_counts_and_the_report(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    stats = SuggestionStats(path)
    stats.shown("a.py", "foo()", typed_through=False)
    stats.shown("a.py", "oo()", typed_through=True)  # the user types the suggestion: still the same one
    stats.accepted("a.py")
    stats.shown("a.py", "bar()", typed_through=False)
    stats.shown("a.py", "baz()", typed_through=False)  # replaces bar() unaccepted
    stats.flush()
    [day] = load(path).values()
    assert day == {"shown": 3, "accepted": 1, "dismissed": 1}
    assert report(load(path)).splitlines()[-1].split() == ["all", "3", "1", "1", "33.3%"]
    path.write_text("{ not json")
    assert load(path) == {} and path.with_suffix(".damaged").exists()


def test_imports_resolve_as_python_does(tmp_path: Path) -> None:
    """Package-relative imports (one level below the root, like a copy of rich), `..` from a subpackage, `from .
    import submodule`, aliases, a src layout and a namespace package (no __init__.py)."""
    rich = tmp_path / "rich"
    (rich / "sub").mkdir(parents=True)
    (rich / "__init__.py").write_text('def get_console():\n    """The global console."""\n')
    (rich / "segment.py").write_text("class Segment:\n    def apply_style(self, style):\n        pass\n")
    (rich / "console.py").write_text("def group(fit=True):\n    pass\n")
    (tmp_path / "segment.py").write_text("def wrong_segment():\n    pass\n")  # what the root-relative lookup found
    (tmp_path / "src" / "app" / "parts").mkdir(parents=True)  # src layout; app.parts is a namespace package
    (tmp_path / "src" / "app" / "__init__.py").write_text("")
    (tmp_path / "src" / "app" / "parts" / "wheel.py").write_text("def spin(speed: int) -> None:\n    pass\n")
    context = WorkspaceContext(tmp_path)
    live = (rich / "live.py").as_uri()
    text = context.gather(live, "from .segment import Segment\nfrom . import console as c\n", 0, 2000)
    assert "# rich/segment.py\nclass Segment:" in text and "wrong_segment" not in text
    assert "# rich/console.py\ndef group(fit=True):" in text  # a submodule imported from the package
    deep = (rich / "sub" / "deep.py").as_uri()
    text = context.gather(deep, "from .. import get_console\nfrom ..segment import Segment as S\n", 0, 2000)
    assert '# rich/__init__.py\ndef get_console():\n    """The global console."""' in text
    assert "class Segment:" in text
    user = (tmp_path / "src" / "app" / "main.py").as_uri()
    assert "def spin(speed: int) -> None:" in context.gather(user, "from app.parts.wheel import spin\n", 0, 2000)
    assert context.gather(live, "from ...outside import x\n", 0, 2000) == ""  # above the workspace: nothing


SEGMENT = '''"""Segments."""
from typing import Iterable, NamedTuple

RenderResult = Iterable["Segment"]
_PRIVATE_LIMIT = 80


class Segment(NamedTuple):
    """A piece of text with a style."""

    text: str
    style: str | None = None

    @classmethod
    def apply_style(cls, segments: Iterable["Segment"], style: str) -> Iterable["Segment"]:
        """Apply a style to segments."""
        return segments

    def split_cells(self, cut: int) -> tuple["Segment", "Segment"]:
        return self, self
'''


def test_constants_aliases_and_the_members_the_code_uses(tmp_path: Path) -> None:
    """A type alias is shown by its line; a class by its header, docstring and fields, plus the members used near
    the cursor (`Segment.apply_style`), not the others; imports under `if TYPE_CHECKING:` and inside functions
    count."""
    (tmp_path / "rich").mkdir()
    (tmp_path / "rich" / "segment.py").write_text(SEGMENT)
    (tmp_path / "rich" / "style.py").write_text(
        "class Style:\n    def __init__(self, bold: bool = False):\n        pass\n"
    )
    (tmp_path / "rich" / "color.py").write_text("def parse_color(text: str) -> int:\n    return 0\n")
    live = (tmp_path / "rich" / "live.py").as_uri()
    text = (
        "from typing import TYPE_CHECKING\n"
        "from .segment import RenderResult, Segment\n"
        "if TYPE_CHECKING:\n"
        "    from .style import Style\n\n\n"
        "def render(style: Style) -> RenderResult:\n"
        "    from .color import parse_color\n"
        "    yield from Segment.apply_style([], style)\n"
    )
    context = WorkspaceContext(tmp_path).gather(live, text, 0, 2000, cursor=len(text))
    assert 'RenderResult = Iterable["Segment"]' in context and "_PRIVATE_LIMIT" not in context
    assert 'class Segment(NamedTuple):\n    """A piece of text with a style."""\n    text: str\n' in context
    assert "    def apply_style(cls, segments" in context and "split_cells" not in context
    assert "# rich/style.py\nclass Style:\n    def __init__(self, bold: bool = False):" in context  # constructor
    assert "def parse_color(text: str) -> int:" in context


def test_items_are_ranked_and_cut_not_dropped_with_their_part(tmp_path: Path) -> None:
    """With a short budget the definitions the code near the cursor uses win over the others, a long one is cut to
    its first line, and the enclosing headers stay; the blocks keep their places (imports first, headers last)."""
    (tmp_path / "pkg").mkdir()
    many = "".join(
        f'def helper_{i}(value: int, other: str = "x") -> int:\n    """Helper {i}."""\n\n' for i in range(30)
    )
    (tmp_path / "pkg" / "helpers.py").write_text(many)
    names = ", ".join(f"helper_{i}" for i in range(30))
    body = "\n".join(f"    x = helper_{i}(1)" for i in range(30))  # every helper is used, helper_29 near the end
    text = f"from pkg.helpers import {names}\n\n\nclass Job:\n    def run(self):\n{body}\n        y = helper_29(\n"
    anchor = text.count("\n") - 3
    context = WorkspaceContext(tmp_path).gather("file:///w/main.py", text, anchor, 300, cursor=len(text) - 1)
    assert len(context) <= 300
    assert context.startswith("# pkg/helpers.py\n")
    assert "def helper_29(value: int" in context  # used at the cursor: chosen first
    assert context.endswith("class Job:\n")  # the window starts inside run(), indented as it
    whole = WorkspaceContext(tmp_path).gather("file:///w/main.py", text, anchor, 100_000, cursor=len(text) - 1)
    assert whole.index("helper_0(") < whole.index("helper_29(")  # placed in import order, not by rank
    tight = WorkspaceContext(tmp_path).gather("file:///w/main.py", text, anchor, 90, cursor=len(text) - 1)
    assert 'def helper_29(value: int, other: str = "x") -> int:\n' in tight and "Helper 29" not in tight  # cut


def test_a_name_a_package_reexports(tmp_path: Path) -> None:
    """`from httpx import Client` where httpx/__init__.py re-exports it from `._client`."""
    (tmp_path / "httpx").mkdir()
    (tmp_path / "httpx" / "__init__.py").write_text("from ._client import Client as Client\n")
    (tmp_path / "httpx" / "_client.py").write_text("class Client:\n    def get(self, url: str) -> str:\n        ...\n")
    context = WorkspaceContext(tmp_path).gather(
        (tmp_path / "app.py").as_uri(), "from httpx import Client\nClient().get(", 0, 2000, cursor=29
    )
    assert "# httpx/_client.py\nclass Client:\n    def get(self, url: str) -> str:" in context


def test_other_languages_get_enclosing_headers_and_recent_edits_of_their_own_language(tmp_path: Path) -> None:
    """A Go file: the headers around the window's start from Go's grammar, a recently edited Go file (not the Python
    one) under a `//` heading; a file with no grammar gets no context."""
    context = WorkspaceContext(tmp_path)
    context.note_edit("file:///w/store.go", "package main\n\nfunc Open(path string) (*Store, error) {\n", 2)
    context.note_edit("file:///w/notes.py", "TOKEN_LIMIT = 4096\n", 0)
    body = "".join(f"\tx{i} := {i}\n" for i in range(40))
    text = f"package main\n\ntype Server struct{{}}\n\nfunc (s *Server) Start() error {{\n{body}\treturn nil\n}}\n"
    gathered = context.gather("file:///w/main.go", text, anchor_line=20, budget=2000)
    assert gathered.startswith("// store.go (recently edited)\npackage main\n\nfunc Open(path string)")
    assert gathered.endswith("func (s *Server) Start() error {\n") and "TOKEN_LIMIT" not in gathered
    assert context.gather("file:///w/main.go", text + "\t", 20, 2000) == gathered  # stable while typing below
    assert context.gather("file:///w/notes.txt", text, 20, 2000) == ""


def test_definitions_from_the_project_index_for_names_near_the_cursor(tmp_path: Path) -> None:
    """Names the code near the cursor uses that no import brings (an attribute's method, a Go function from another
    package) are looked up in the project's index (a real one over the files): their definitions are shown, the
    document's own and Python's builtins are not."""
    from cove.agent.code_index import CodeIndex

    root = tmp_path / "w"
    (root / "store").mkdir(parents=True)
    (root / "store" / "disk.py").write_text(
        'class Disk:\n    def read_header(self, request) -> bytes:\n        """The request\'s header."""\n'
    )
    (root / "jobs").mkdir()
    (root / "jobs" / "queue.go").write_text("package jobs\n\nfunc ScheduleJob(name string) error {\n\treturn nil\n}\n")
    index = CodeIndex(root, tmp_path / "index.db")
    index.refresh()
    asked: list[list[str]] = []

    def lookup(names: list[str]) -> list[tuple[str, str, int, str]]:
        asked.append(names)
        return [(c.name, c.path, c.start_line, c.text) for c in index.definitions(names)]

    context = WorkspaceContext(root, index=lookup)
    text = "def handle(self, request):\n    data = self.disk.read_header(request)\n    print(len(data))\n"
    gathered = context.gather((root / "app.py").as_uri(), text, 0, 2000, cursor=len(text))
    assert "# store/disk.py\n    def read_header(self, request) -> bytes:" in gathered
    assert "print" not in asked[-1] and "len" not in asked[-1] and "handle" in asked[-1]
    assert "def handle" not in gathered  # this document's own definitions are in the window already
    go = 'package main\n\nfunc main() {\n\tjobs.ScheduleJob("nightly")\n}\n'
    gathered = context.gather((root / "main.go").as_uri(), go, 0, 2000, cursor=len(go) - 3)
    assert gathered.startswith("// jobs/queue.go\nfunc ScheduleJob(name string) error {")
