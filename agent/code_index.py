"""A workspace's code index: chunks of code ranked by BM25 (SQLite FTS5) and a symbol table (definitions and
references), one database per workspace, shared by every editor and the agent through the daemon.

Chunks come from each language's grammar and query (cove/languages.py): every definition (whole when it is short,
its first lines — signature, docstring — when it is long), and small files without definitions whole. A file is
indexed again only when its size or modification time changed; a file that is gone is dropped. Files are walked as
git would see them (.gitignore honoured) and bounded (MAX_FILES files, MAX_FILE_BYTES each). Every file's rows are
written in one transaction, in WAL mode, so a daemon killed mid-build leaves a consistent index that the next
build resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cove import languages
from cove.agent.safety import Workspace
from cove.agent.search_tools import walk_files
from cove.errors import CoveError

#: Files indexed per workspace at most (the walk stops there; `status` says so).
MAX_FILES = 50_000
#: Larger files are skipped (generated code, bundles, data).
MAX_FILE_BYTES = 1_000_000
#: A definition up to this many lines is a chunk whole; a longer one by its first HEAD_LINES.
WHOLE_LINES, HEAD_LINES = 40, 10
#: A chunk's text is cut at this many characters.
CHUNK_CHARS = 2_000
#: Files to read before a build parses in several processes (below it, starting them costs more than it saves).
PARALLEL_FROM = 500
#: Niceness of the build (Linux sets it per thread, and per process for the parsing processes).
BUILD_NICENESS = 10
#: Files written per transaction while the workspace is walked.
BATCH_FILES = 64
#: Words of a search that appear in more than this share of the chunks are left out (keywords, `self`).
COMMON_SHARE = 0.02
#: A file without definitions is a chunk whole when it is this short.
SMALL_FILE_LINES = 60

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    language TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_by_name ON chunks(name);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    name, text, content='chunks', content_rowid='id', tokenize="unicode61 tokenchars '_'"
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, name, text) VALUES (new.id, new.name, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, name, text) VALUES ('delete', old.id, old.name, old.text);
END;
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
CREATE TABLE IF NOT EXISTS refs (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_by_name ON refs(name);
CREATE INDEX IF NOT EXISTS refs_by_file ON refs(file_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{1,}")


class CodeIndexError(CoveError):
    """The index database cannot be opened or written."""


@dataclass(frozen=True)
class Chunk:
    """A piece of indexed code: where it is (workspace-relative path, 1-based lines), what it defines, its text."""

    path: str
    kind: str
    name: str
    start_line: int
    end_line: int
    text: str


@dataclass(frozen=True)
class IndexStatus:
    root: str
    files: int
    chunks: int
    references: int
    #: When the last full pass over the workspace ended (seconds since the epoch; 0: never).
    built: float
    #: When a file was last indexed (seconds since the epoch; 0: never).
    updated: float
    database: str
    bytes: int


def database_for(data: Path, root: Path) -> Path:
    """Where a workspace's index lives: one file per workspace root under the daemon's data folder."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return data / "index" / f"{root.name or 'root'}-{digest}.db"


def chunks_of(
    grammar: languages.Grammar, source: bytes
) -> tuple[list[tuple[str, str, int, int, str]], list[tuple[str, int]]]:
    """A file's chunks (kind, name, first and last line 1-based, text) and references (name, line 1-based)."""
    tree = grammar.parse(source)
    symbols = grammar.symbols(tree, source)
    lines = source.decode("utf-8", "replace").split("\n")
    chunks = []
    definitions = symbols.definitions
    for index, definition in enumerate(definitions):
        start, end = definition.start_line, definition.end_line
        inner = [d for d in definitions[index + 1 :] if d.start_line <= end]
        if inner:  # a class: its opening lines and its members' headers (each member is a chunk of its own)
            shown = lines[start : min(start + HEAD_LINES, inner[0].start_line)] + [d.header for d in inner[:30]]
        else:
            shown = lines[start : end + 1] if end - start < WHOLE_LINES else lines[start : start + HEAD_LINES]
        chunks.append((definition.kind, definition.name, start + 1, end + 1, "\n".join(shown)[:CHUNK_CHARS]))
    if not chunks and len(lines) <= SMALL_FILE_LINES and source.strip():
        chunks.append(("file", "", 1, len(lines), "\n".join(lines)[:CHUNK_CHARS]))
    first: dict[str, int] = {}  # a name's first reference in the file: where it is used, not every use
    for name, line in symbols.references:
        first.setdefault(name, line + 1)
    return chunks, list(first.items())


@dataclass(frozen=True)
class _Parsed:
    """A file's rows, made outside the database's lock (searches go on while files are parsed)."""

    path: str
    size: int
    mtime: float
    language: str
    chunks: list[tuple[str, str, int, int, str]]
    references: list[tuple[str, int]]


def _parse_entry(entry: tuple[Path, str, int, float]) -> _Parsed | None:
    return _parse(*entry)


def lower_priority() -> None:
    """Lower this thread's (or process's) scheduling priority: completions come first."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICENESS)


def _parse(path: Path, relative: str, size: int, mtime: float) -> _Parsed | None:
    grammar = languages.grammar_for(path.name)
    if grammar is None or size > MAX_FILE_BYTES:
        return None
    try:
        source = path.read_bytes()
    except OSError:
        return None
    chunks, references = chunks_of(grammar, source)
    return _Parsed(relative, size, mtime, grammar.name, chunks, references)


class CodeIndex:
    """The index of one workspace: `refresh` walks it (changed files only), `update` re-reads some files, `search`
    ranks chunks for words, `definitions` looks names up. Safe to call from several threads."""

    def __init__(self, root: Path, database: Path) -> None:
        self.workspace = Workspace.at(root)
        self.root = self.workspace.root
        self.path = database
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
            self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            self._db.executescript(SCHEMA)
            if self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
        except sqlite3.DatabaseError as err:
            raise CodeIndexError(f"cannot open the code index {database}: {err}; delete it to rebuild") from err
        # Searches read through a connection of their own: in WAL mode they see the last commit and never wait for
        # a build's transaction.
        self._read = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._read.close()

    def refresh(
        self,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
        workers: int = 1,
    ) -> int:
        """Index what changed since the last pass, drop what is gone; returns the files (re)indexed. `progress` gets
        (files done, files in the workspace) as it goes; `stop` ends the pass early (what was done is kept);
        `workers` > 1 parses in that many processes when there are many files to read."""
        files = list(self._source_files())
        with self._lock:
            known = {row[0]: (row[1], row[2]) for row in self._db.execute("SELECT path, size, mtime FROM files")}
        seen: set[str] = set()
        changed: list[tuple[Path, str, int, float]] = []
        for path in files:
            relative = self.workspace.relative(path)
            seen.add(relative)
            try:
                info = path.stat()
            except OSError:
                continue
            if known.get(relative) != (info.st_size, info.st_mtime):
                changed.append((path, relative, info.st_size, info.st_mtime))
        unchanged = len(files) - len(changed)
        if progress is not None:
            progress(unchanged, len(files))
        batch: list[_Parsed] = []
        indexed = 0
        with contextlib.ExitStack() as stack:
            parsed_files: Iterable[_Parsed | None] = (_parse(*entry) for entry in changed)
            if workers > 1 and len(changed) >= PARALLEL_FROM:
                context = multiprocessing.get_context("spawn")  # the daemon has threads: never fork it
                pool = ProcessPoolExecutor(workers, context, initializer=lower_priority)
                stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # a stop leaves the rest unread
                parsed_files = pool.map(_parse_entry, changed, chunksize=16)
            for number, parsed in enumerate(parsed_files, start=1):
                if stop is not None and stop.is_set():
                    break
                if parsed is not None:
                    batch.append(parsed)
                if len(batch) >= BATCH_FILES:
                    indexed += self._write(batch)
                    batch = []
                if progress is not None and (number % 50 == 0 or number == len(changed)):
                    progress(unchanged + number, len(files))
        indexed += self._write(batch)
        if stop is not None and stop.is_set():
            return indexed
        gone = [path for path in known if path not in seen]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in gone])
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('built', ?)", (str(time.time()),))
            self._db.execute("COMMIT")
        return indexed

    def update(self, paths: Iterable[Path]) -> int:
        """Index these files again now (a save, a watcher's event); a file that is gone or ignored is dropped."""
        count = 0
        for path in paths:
            path = (path if path.is_absolute() else self.root / path).resolve()
            if not path.is_relative_to(self.root):
                continue
            relative = self.workspace.relative(path)
            try:
                info = path.stat()
            except OSError:
                with self._lock:
                    self._db.execute("DELETE FROM files WHERE path = ?", (relative,))
                continue
            if languages.language_of(path.name) is not None and info.st_size <= MAX_FILE_BYTES:
                count += self._index_file(path, relative, info.st_size, info.st_mtime)
        return count

    def _source_files(self) -> Iterable[Path]:
        count = 0
        for path in walk_files(self.workspace):
            if languages.language_of(path.name) is None:
                continue
            count += 1
            if count > MAX_FILES:
                return
            yield path

    def _index_file(self, path: Path, relative: str, size: int, mtime: float) -> int:
        parsed = _parse(path, relative, size, mtime)
        return self._write([parsed]) if parsed is not None else 0

    def _write(self, batch: list[_Parsed]) -> int:
        """Replace the rows of the parsed files, in one transaction."""
        if not batch:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            for parsed in batch:
                self._db.execute("DELETE FROM files WHERE path = ?", (parsed.path,))
                cursor = self._db.execute(
                    "INSERT INTO files(path, size, mtime, language) VALUES (?, ?, ?, ?)",
                    (parsed.path, parsed.size, parsed.mtime, parsed.language),
                )
                file_id = cursor.lastrowid
                self._db.executemany(
                    "INSERT INTO chunks(file_id, kind, name, start_line, end_line, text) VALUES (?, ?, ?, ?, ?, ?)",
                    [(file_id, *chunk) for chunk in parsed.chunks],
                )
                self._db.executemany("INSERT INTO refs VALUES (?, ?, ?)", [(file_id, *r) for r in parsed.references])
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('updated', ?)", (str(time.time()),))
            self._db.execute("COMMIT")
        return len(batch)

    def search(self, text: str, limit: int = 10, exclude: str | None = None) -> list[Chunk]:
        """The chunks that best match the words of `text` (BM25, a name match weighing five times the text's),
        optionally leaving out one file (the one being edited)."""
        words = self._distinctive(list(dict.fromkeys(_WORD.findall(text)))[:64], exclude)
        if not words:
            return []
        query = " OR ".join(f'"{word}"' for word in words)
        sql = (
            "SELECT f.path, c.kind, c.name, c.start_line, c.end_line, c.text FROM chunks_fts"
            " JOIN chunks c ON c.id = chunks_fts.rowid JOIN files f ON f.id = c.file_id"
            " WHERE chunks_fts MATCH ? AND f.path IS NOT ? ORDER BY bm25(chunks_fts, 5.0, 1.0) LIMIT ?"
        )
        with self._read_lock:
            rows = self._read.execute(sql, (query, exclude, limit)).fetchall()
        return [Chunk(*row) for row in rows]

    def _distinctive(self, words: list[str], exclude: str | None = None, keep: int = 8) -> list[str]:
        """The rarest of `words` in the index (at most `keep`), without those most chunks hold: ranking by them
        tells little, and costs the most; the chunks of `exclude` are not counted (a word only the file being
        edited holds would find nothing else)."""
        if not words:
            return []
        terms = [word.lower() for word in words]  # the tokenizer folds case
        marks = ",".join("?" * len(terms))
        with self._read_lock:
            total = self._read.execute("SELECT max(rowid) FROM chunks").fetchone()[0] or 0  # about their number
            counts = dict(self._read.execute(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", terms))
            own = self._read.execute(
                "SELECT c.text, c.name FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?", (exclude,)
            ).fetchall()
        for chunk_text, name in own:
            for term in {word.lower() for word in _WORD.findall(f"{name} {chunk_text}")}:
                if term in counts:
                    counts[term] -= 1
        common = max(50, total * COMMON_SHARE)
        found = [word for word in words if 0 < counts.get(word.lower(), 0) <= common]
        return sorted(found, key=lambda word: counts[word.lower()])[:keep]

    def definitions(self, names: Iterable[str], limit: int = 20) -> list[Chunk]:
        """The chunks that define these names (any language), in the order the names were given."""
        wanted = list(dict.fromkeys(names))[:64]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        sql = (
            "SELECT f.path, c.kind, c.name, c.start_line, c.end_line, c.text FROM chunks c"
            f" JOIN files f ON f.id = c.file_id WHERE c.name IN ({marks}) LIMIT ?"
        )
        with self._read_lock:
            rows = self._read.execute(sql, (*wanted, limit * 4)).fetchall()
        order = {name: index for index, name in enumerate(wanted)}
        return [Chunk(*row) for row in sorted(rows, key=lambda row: order[row[2]])][:limit]

    def references(self, name: str, limit: int = 50) -> list[tuple[str, int]]:
        """Where `name` is referenced (workspace-relative path, 1-based line)."""
        sql = (
            "SELECT f.path, r.line FROM refs r JOIN files f ON f.id = r.file_id WHERE r.name = ? ORDER BY 1, 2 LIMIT ?"
        )
        with self._read_lock:
            return [(str(path), int(line)) for path, line in self._read.execute(sql, (name, limit))]

    def status(self) -> IndexStatus:
        with self._read_lock:
            files = self._read.execute("SELECT count(*) FROM files").fetchone()[0]
            chunks = self._read.execute("SELECT count(*) FROM chunks").fetchone()[0]
            refs = self._read.execute("SELECT count(*) FROM refs").fetchone()[0]
            meta = dict(self._read.execute("SELECT key, value FROM meta").fetchall())
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return IndexStatus(
            str(self.root),
            files,
            chunks,
            refs,
            float(meta.get("built", 0)),
            float(meta.get("updated", 0)),
            str(self.path),
            size,
        )
