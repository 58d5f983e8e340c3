"""The workspace code index over real files and a real SQLite database: chunks and BM25, the symbol table,
.gitignore, incremental updates, persistence, and a build killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pip
import pytest

from cove.agent.code_index import CodeIndex, database_for

SERVER = '''"""A server."""
from .store import open_store


class RequestHandler:
    """Handles one request."""

    def handle(self, request):
        store = open_store(request.path)
        return store.read_header(request)
'''
STORE = """package store

// OpenStore opens the store at path.
func OpenStore(path string) (*Store, error) {
\treturn &Store{path: path}, nil
}
"""


def workspace(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "server.py").write_text(SERVER)
    (root / "app" / "store.go").write_text(STORE)
    (root / "build").mkdir()
    (root / "build" / "generated.py").write_text("def generated_handler():\n    pass\n")
    (root / ".gitignore").write_text("build/\n")
    (root / "notes.txt").write_text("not code")
    return root


def test_chunks_search_definitions_references_and_gitignore(tmp_path: Path) -> None:
    root = workspace(tmp_path / "w")
    index = CodeIndex(root, database_for(tmp_path / "data", root))
    assert index.refresh() == 2  # server.py and store.go; build/ is ignored, notes.txt has no grammar
    status = index.status()
    assert (status.files, status.chunks) == (2, 3) and status.built > 0 and status.bytes > 0
    [found, *_] = index.search("store = open_store(request.path)")
    assert (found.path, found.name) == ("app/server.py", "handle")  # the rare words win; `request` is everywhere
    [handler] = index.search("RequestHandler", limit=1)
    # a class: its opening lines and its members' headers (the method is a chunk of its own)
    assert handler.kind == "class"
    assert handler.text == 'class RequestHandler:\n    """Handles one request."""\n\n    def handle(self, request):'
    [go] = index.definitions(["OpenStore"])
    assert (go.path, go.start_line, go.end_line, go.kind) == ("app/store.go", 4, 6, "function")
    assert index.references("open_store") == [("app/server.py", 9)]
    assert index.search("generated_handler") == [] and index.search("if for the") == []
    assert index.search("handle", exclude="app/server.py") == []


def test_changes_are_indexed_incrementally_and_survive_a_restart(tmp_path: Path) -> None:
    root = workspace(tmp_path / "w")
    database = database_for(tmp_path / "data", root)
    index = CodeIndex(root, database)
    index.refresh()
    server = root / "app" / "server.py"
    server.write_text(SERVER.replace("def handle(self, request):", "def handle_request(self, request):"))
    later = time.time() + 5
    os.utime(server, (later, later))
    assert index.refresh() == 1  # only the changed file
    assert index.definitions(["handle"]) == [] and index.definitions(["handle_request"])
    (root / "app" / "store.go").unlink()
    (root / "app" / "cache.py").write_text("def warm_cache(size: int) -> None:\n    pass\n")
    assert index.update([root / "app" / "store.go", Path("app/cache.py")]) == 1  # a save: gone, and new
    assert index.definitions(["OpenStore"]) == [] and index.definitions(["warm_cache"])
    index.close()
    again = CodeIndex(root, database)  # a restarted daemon: nothing to read again
    assert again.refresh() == 0 and again.status().files == 2


def test_a_build_killed_half_way_leaves_a_sound_index_that_resumes(tmp_path: Path) -> None:
    """SIGKILL a process building the index of pip's sources; the database opens, passes SQLite's check, and the
    next pass indexes only what the killed one had not."""
    tree = Path(pip.__file__).parent
    database = tmp_path / "pip.db"
    code = (
        "import sys; from pathlib import Path; from cove.agent.code_index import CodeIndex;"
        "CodeIndex(Path(sys.argv[1]), Path(sys.argv[2])).refresh(lambda done, total: print(done, flush=True))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(tree), str(database)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    while int(process.stdout.readline() or 0) < 150:  # killed mid-way: some hundred files in
        assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    index = CodeIndex(tree, database)
    partial = index.status().files
    assert partial >= 64  # written in transactions of 64 files
    resumed = index.refresh()
    assert 0 < resumed == index.status().files - partial and index.status().built > 0
    assert "_vendor/rich/segment.py" in [chunk.path for chunk in index.definitions(["Segment"])]


def test_parsing_in_processes_gives_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build whose files are parsed in two processes holds what a build in one thread does."""
    import cove.agent.code_index as code_index

    monkeypatch.setattr(code_index, "PARALLEL_FROM", 50)
    tree = Path(pip.__file__).parent / "_vendor" / "rich"
    alone, together = CodeIndex(tree, tmp_path / "one.db"), CodeIndex(tree, tmp_path / "two.db")
    assert alone.refresh() == together.refresh(workers=2) > 50
    first, second = alone.status(), together.status()
    assert (first.files, first.chunks, first.references) == (second.files, second.chunks, second.references)
    assert together.definitions(["Segment"])[0].path == "segment.py"
