"""The context's newer sources over real files and a real index: the ring of code the user viewed, yanked and saved,
the index's BM25 neighbours of the window, and `[completion] context_sources`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove import languages
from cove.agent.code_index import CodeIndex
from cove.config import load_config
from cove.errors import ConfigError
from cove.server.context.recent_code import RING_SIZE, YANK_LINES, RecentCode
from cove.server.context.workspace_context import SOURCES, WorkspaceContext

RETRY = '''"""Retrying with backoff."""


def backoff_delays(base: float, attempts: int) -> list[float]:
    """Delays between attempts: base, 2*base, 4*base, ..."""
    return [base * 2**n for n in range(attempts)]


def retry_forever(call):
    while True:
        try:
            return call()
        except OSError:
            continue
'''

CLIENT = """import time


def fetch(session, url):
    for delay in backoff_delays(0.5, 4):
        response = session.get(url)
        if response.ok:
            return response
        time.sleep(delay)
    ret"""


def test_the_ring_keeps_what_was_seen_replaces_repeats_and_is_bounded() -> None:
    recent = RecentCode()
    text = "\n".join(f"line_{n} = {n}" for n in range(200))
    recent.note_seen("file:///w/a.py", text, 50, "viewed")
    recent.note_seen("file:///w/a.py", text, 50, "viewed")  # the same place again: nothing changes
    recent.note_seen("file:///w/a.py", text, 52, "viewed")  # mostly the same lines: replaces the first
    [chunk] = recent.chunks()
    assert (chunk.start_line, chunk.kind) == (44, "viewed") and chunk.text.startswith("line_44 = 44\n")
    recent.note_seen("file:///w/a.py", text, 10, "yanked", end_line=12)
    assert [c.text for c in recent.chunks()][-1] == "line_10 = 10\nline_11 = 11\nline_12 = 12"
    recent.note_seen("file:///w/a.py", "\n\n\nx = 1\n\n", 2, "viewed")  # one line of code: not worth a place
    assert len(recent.chunks()) == 2
    for place in range(0, 200, 8):
        recent.note_seen("file:///w/b.py", text, place, "yanked", end_line=place + 3)
    assert len(recent.chunks()) == RING_SIZE and recent.chunks()[-1].start_line == 192


def test_seen_code_that_shares_names_with_the_cursor_goes_into_the_context(tmp_path: Path) -> None:
    """A yanked definition from another file shows up when the code near the cursor uses its names; a viewed chunk
    of unrelated code, or of the other language, does not; nor does a chunk of this document inside the window."""
    context = WorkspaceContext(tmp_path)
    uri = (tmp_path / "client.py").as_uri()
    context.recent.note_seen((tmp_path / "retry.py").as_uri(), RETRY, 3, "yanked", end_line=5)
    context.recent.note_seen((tmp_path / "unrelated.py").as_uri(), "width = 3\nheight = 4\narea = 12\n", 1, "viewed")
    context.recent.note_seen(
        (tmp_path / "retry.js").as_uri(), "function backoff_delays() {\n  return [];\n}", 0, "viewed"
    )
    context.recent.note_seen(uri, CLIENT, 4, "viewed")
    gathered = context.gather(uri, CLIENT, 0, 2000, cursor=len(CLIENT))
    assert gathered.startswith("# retry.py:4 (yanked)\ndef backoff_delays(base: float, attempts: int) -> list[float]:")
    assert "area" not in gathered and "function" not in gathered and "session.get" not in gathered
    assert context.gather(uri, CLIENT + "u", 0, 2000, cursor=len(CLIENT) + 1) == gathered  # stable while typing
    assert "backoff_delays" not in WorkspaceContext(tmp_path).gather(uri, CLIENT, 0, 2000, cursor=len(CLIENT))


def test_a_save_puts_the_last_edit_place_in_the_ring(tmp_path: Path) -> None:
    context = WorkspaceContext(tmp_path)
    retry = (tmp_path / "retry.py").as_uri()
    context.note_edit(retry, RETRY, 5)
    context.recent.note_saved(retry)
    context.recent.note_saved((tmp_path / "never-edited.py").as_uri())
    assert [(c.kind, c.start_line) for c in context.recent.chunks()] == [("saved", 0)]


def test_neighbours_of_the_window_from_the_index(tmp_path: Path) -> None:
    """A real index over the workspace: the chunk most like the window (not the document itself) is shown, asked
    once per window anchor, with the window's text before the cursor's line as the query."""
    root = tmp_path / "w"
    root.mkdir()
    (root / "retry.py").write_text(RETRY)
    (root / "client.py").write_text(CLIENT)
    (root / "shapes.py").write_text("def area(width, height):\n    return width * height\n")
    index = CodeIndex(root, tmp_path / "index.db")
    index.refresh()
    asked: list[tuple[str, str, str | None]] = []

    def neighbours(key: str, query: str, exclude: str | None) -> list[tuple[str, int, str]]:
        asked.append((key, query, exclude))
        return [(c.path, c.start_line, c.text) for c in index.search(query, 6, exclude)]

    context = WorkspaceContext(root, neighbours=neighbours, sources=frozenset({"neighbours"}))
    uri = (root / "client.py").as_uri()
    gathered = context.gather(uri, CLIENT, 0, 2000, cursor=len(CLIENT))
    assert gathered.startswith("# retry.py\ndef backoff_delays(base: float, attempts: int) -> list[float]:")
    assert "def area" not in gathered and "def fetch" not in gathered
    key, query, exclude = asked[0]
    assert key == f"{uri}#0" and exclude == "client.py"
    assert query.endswith("time.sleep(delay)\n") and "ret" not in query.split("\n")[-1]


def test_context_sources_leave_sources_out(tmp_path: Path) -> None:
    """Each source can be turned off: with only `scopes`, the yanked chunk and the recent edit are gone."""
    text = "class Server:\n    def handle(self, request):\n" + "        x = backoff_delays(1, 2)\n" * 30
    everything = WorkspaceContext(tmp_path)
    headers_only = WorkspaceContext(tmp_path, sources=frozenset({"scopes"}))
    for context in (everything, headers_only):
        context.recent.note_seen((tmp_path / "retry.py").as_uri(), RETRY, 3, "yanked", end_line=5)
        context.note_edit((tmp_path / "notes.py").as_uri(), "TOKEN_LIMIT = 4096\n", 0)
    uri = (tmp_path / "server.py").as_uri()
    full = everything.gather(uri, text, 10, 2000, cursor=len(text))
    assert "(yanked)" in full and "(recently edited)" in full and full.endswith("    def handle(self, request):\n")
    assert (
        headers_only.gather(uri, text, 10, 2000, cursor=len(text)) == "class Server:\n    def handle(self, request):\n"
    )


def test_context_sources_setting_is_checked(tmp_path: Path) -> None:
    loaded = load_config(None, {"XDG_CONFIG_HOME": str(tmp_path), "COVE_COMPLETION_CONTEXT_SOURCES": '["recent"]'})
    assert loaded.config.completion.context_sources == ("recent",)
    assert set(load_config(None, {"XDG_CONFIG_HOME": str(tmp_path)}).config.completion.context_sources) == SOURCES
    with pytest.raises(ConfigError, match=r"completion\.context_sources' must be a list of 'imports', 'index'"):
        load_config(None, {"XDG_CONFIG_HOME": str(tmp_path), "COVE_COMPLETION_CONTEXT_SOURCES": '["ring"]'})


def test_viewing_a_yanked_place_keeps_the_yank() -> None:
    recent = RecentCode()
    recent.note_seen("file:///w/retry.py", RETRY, 3, "yanked", end_line=5)
    recent.note_seen("file:///w/retry.py", RETRY, 4, "viewed")  # the cursor rests there after the yank
    assert [chunk.kind for chunk in recent.chunks()] == ["yanked"]


def test_the_context_by_file_for_the_repository_format(tmp_path: Path) -> None:
    """The same context as files: named by path (a heading's line and kind left out), the enclosing headers as the
    document's own file; its text is what the commented form holds under each heading."""
    context = WorkspaceContext(tmp_path)
    context.recent.note_seen((tmp_path / "retry.py").as_uri(), RETRY, 3, "yanked", end_line=5)
    context.note_edit((tmp_path / "notes.py").as_uri(), "BACKOFF_LIMIT = 4096\nbackoff_delays = None\n", 0)
    text = "class Server:\n    def handle(self, request):\n" + "        x = backoff_delays(1, 2)\n" * 30
    uri = (tmp_path / "server.py").as_uri()
    found = context.gather_prompt(uri, text, 10, 2000, cursor=len(text))
    assert [file.name for file in found.files] == ["retry.py", "notes.py", "server.py"]
    assert found.files[0].text.startswith("def backoff_delays(base: float, attempts: int)")
    assert found.files[2].text == "class Server:\n    def handle(self, request):"
    assert found.text == context.gather(uri, text, 10, 2000, cursor=len(text))
    assert all(file.text in found.text for file in found.files)


def test_a_name_the_index_finds_in_several_files_is_not_guessed(tmp_path: Path) -> None:
    """`close` defined in two files could be either: neither is shown; `flush_buffers`, defined once, is."""
    root = tmp_path / "w"
    root.mkdir()
    (root / "files.py").write_text("def close_all(handle):\n    pass\n\n\ndef flush_buffers(handle):\n    pass\n")
    (root / "sockets.py").write_text("def close_all(sock):\n    pass\n")
    index = CodeIndex(root, tmp_path / "index.db")
    index.refresh()

    def lookup(names: list[str]) -> list[tuple[str, str, int, str]]:
        return [(c.name, c.path, c.start_line, c.text) for c in index.definitions(names)]

    context = WorkspaceContext(root, index=lookup, sources=frozenset({"index"}))
    text = "def shutdown(handle):\n    flush_buffers(handle)\n    close_all(handle)\n"
    gathered = context.gather((root / "app.py").as_uri(), text, 0, 2000, cursor=len(text))
    assert gathered == "# files.py\ndef flush_buffers(handle):\n    pass\n"


def test_sharing_only_a_languages_common_words_relates_nothing(tmp_path: Path) -> None:
    """In JavaScript, `const`, `this` and `return` are in every chunk: a seen chunk sharing only those stays out; one
    sharing a name of the code at the cursor goes in. Every language with a grammar has such words."""
    context = WorkspaceContext(tmp_path, sources=frozenset({"recent"}))
    context.recent.note_seen("file:///w/other.js", "const x = this.width;\nreturn this.height;\n", 0, "viewed")
    context.recent.note_seen("file:///w/codec.js", "function encodeFrame(frame) {\n  return frame;\n}\n", 0, "viewed")
    text = "const header = this.parse();\nreturn encodeFrame(header);\n"
    gathered = context.gather((tmp_path / "app.js").as_uri(), text, 0, 2000, cursor=len(text))
    assert gathered == "// codec.js:1 (viewed)\nfunction encodeFrame(frame) {\n  return frame;\n}\n"
    assert all(len(languages.common_words(name)) >= 20 for name in languages.names())


def test_a_long_yank_is_cut_from_its_first_line_whichever_way_it_was_given() -> None:
    recent = RecentCode()
    text = "\n".join(f"value_{n} = {n}" for n in range(300))
    recent.note_seen("file:///w/a.py", text, 250, "yanked", end_line=100)
    [chunk] = recent.chunks()
    assert chunk.start_line == 100 and chunk.text.count("\n") + 1 == YANK_LINES
