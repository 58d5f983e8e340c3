"""The daemon's memory: sessions and transcripts, offloaded tool outputs, and project notes, in SQLite.

WAL mode, one connection guarded by a lock, versioned migrations (`PRAGMA user_version`), FTS5 over notes.
Every text is redacted before it is written. A write returns only after its transaction committed, so a write that
was acknowledged survives the process being killed (WAL with synchronous=NORMAL loses nothing on a process crash).
"""

from __future__ import annotations

import enum
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cove.agent.redact import redact
from cove.errors import CoveError

#: Each entry migrates the schema from version N to N+1; never edit one that has shipped, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX messages_by_session ON messages(session_id, id);
    CREATE TABLE outputs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        tool TEXT NOT NULL,
        content TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope TEXT NOT NULL CHECK (scope IN ('user', 'project')),
        project TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE VIRTUAL TABLE notes_fts USING fts5(text, kind, content='notes', content_rowid='id');
    CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
        INSERT INTO notes_fts(rowid, text, kind) VALUES (new.id, new.text, new.kind);
    END;
    CREATE TRIGGER notes_ad AFTER DELETE ON notes BEGIN
        INSERT INTO notes_fts(notes_fts, rowid, text, kind) VALUES ('delete', old.id, old.text, old.kind);
    END;
    """,
    """
    CREATE TABLE proposals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL,
        text TEXT NOT NULL,
        created REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected'))
    );
    """,
]


class StoreError(CoveError):
    """The memory database cannot be opened, migrated or written."""


class NoteScope(enum.StrEnum):
    """Where a note applies: to one project, or to everything the user does."""

    USER = "user"
    PROJECT = "project"


@dataclass(frozen=True)
class Session:
    id: str
    project: str
    title: str
    created: float
    updated: float
    closed: bool
    #: The session's first message from the user (cut at 200 characters): what a list of sessions shows.
    preview: str = ""


@dataclass(frozen=True)
class Message:
    id: int
    session_id: str
    role: str
    content: str


@dataclass(frozen=True)
class Note:
    id: int
    scope: NoteScope
    project: str
    kind: str
    text: str


@dataclass(frozen=True)
class StoredProposal:
    id: int
    project: str
    text: str
    status: str


class MemoryStore:
    """Sessions, transcripts, offloaded outputs and notes of one user, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the memory database {path}: {err}") from err
        self._lock = threading.Lock()
        self._migrate()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        """The version the schema is at."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.path} was written by a newer Cove (schema {version}); upgrade Cove")
            for number in range(version, len(MIGRATIONS)):
                # executescript commits first; the version bump is in the same script so both land or neither does.
                script = f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
                try:
                    self._db.executescript(script)
                except sqlite3.Error as err:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise StoreError(f"cannot migrate {self.path} to schema {number + 1}: {err}") from err

    def _write(self, sql: str, parameters: tuple[object, ...]) -> int:
        with self._lock:
            try:
                cursor = self._db.execute(sql, parameters)
            except sqlite3.Error as err:
                raise StoreError(f"cannot write to the memory database: {err}") from err
            return int(cursor.lastrowid or 0)

    def create_session(self, project: str, title: str) -> Session:
        """A new open session for `project`."""
        now = time.time()
        session = Session(uuid.uuid4().hex, project, redact(title), now, now, False)
        self._write(
            "INSERT INTO sessions (id, project, title, created, updated) VALUES (?, ?, ?, ?, ?)",
            (session.id, session.project, session.title, now, now),
        )
        return session

    def session(self, session_id: str) -> Session:
        """The session with this id; StoreError when there is none."""
        row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"no session {session_id!r}; list them with session/list")
        return Session(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    def sessions(self, project: str | None = None, include_closed: bool = False) -> list[Session]:
        """Sessions, most recently updated first."""
        rows = self._db.execute(
            """SELECT s.*, (SELECT substr(content, 1, 200) FROM messages
                            WHERE session_id = s.id AND role = 'user' ORDER BY id LIMIT 1)
               FROM sessions AS s WHERE (? IS NULL OR project = ?) AND (? OR closed = 0) ORDER BY updated DESC""",
            (project, project, include_closed),
        ).fetchall()
        return [Session(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6] or "") for r in rows]

    def close_session(self, session_id: str) -> None:
        """Mark a session closed; its transcript stays."""
        self.session(session_id)
        self._write("UPDATE sessions SET closed = 1, updated = ? WHERE id = ?", (time.time(), session_id))

    def append_message(self, session_id: str, role: str, content: str) -> int:
        """Add a message to a session's transcript; returns its id."""
        self.session(session_id)
        now = time.time()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cursor = self._db.execute(
                    "INSERT INTO messages (session_id, role, content, created) VALUES (?, ?, ?, ?)",
                    (session_id, role, redact(content), now),
                )
                self._db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write to the memory database: {err}") from err
            return int(cursor.lastrowid or 0)

    def transcript(self, session_id: str) -> list[Message]:
        """A session's messages in order."""
        rows = self._db.execute(
            "SELECT id, session_id, role, content FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
        ).fetchall()
        return [Message(*row) for row in rows]

    def offload_output(self, session_id: str, tool: str, content: str) -> int:
        """Keep a large tool output out of the context; returns the id the agent can read it back by."""
        return self._write(
            "INSERT INTO outputs (session_id, tool, content, created) VALUES (?, ?, ?, ?)",
            (session_id, tool, redact(content), time.time()),
        )

    def output(self, output_id: int) -> str:
        """An offloaded output."""
        row = self._db.execute("SELECT content FROM outputs WHERE id = ?", (output_id,)).fetchone()
        if row is None:
            raise StoreError(f"no offloaded output {output_id}")
        return str(row[0])

    def write_note(self, scope: NoteScope, project: str, kind: str, text: str) -> Note:
        """Remember a fact, convention or decision, redacted."""
        clean = redact(text.strip())
        if not clean:
            raise StoreError("a memory note needs text")
        note_id = self._write(
            "INSERT INTO notes (scope, project, kind, text, created) VALUES (?, ?, ?, ?, ?)",
            (scope.value, project if scope is NoteScope.PROJECT else "", kind, clean, time.time()),
        )
        return Note(note_id, scope, project if scope is NoteScope.PROJECT else "", kind, clean)

    def propose(self, project: str, text: str) -> StoredProposal:
        """Keep an addition to the project's COVE.md that the agent proposes, until the user decides."""
        clean = redact(text.strip())
        if not clean:
            raise StoreError("a proposal needs text")
        ident = self._write(
            "INSERT INTO proposals (project, text, created) VALUES (?, ?, ?)", (project, clean, time.time())
        )
        return StoredProposal(ident, project, clean, "pending")

    def proposals(self, project: str) -> list[StoredProposal]:
        """The project's proposals still waiting for the user."""
        rows = self._db.execute(
            "SELECT id, project, text, status FROM proposals WHERE project = ? AND status = 'pending' ORDER BY id",
            (project,),
        ).fetchall()
        return [StoredProposal(*row) for row in rows]

    def decide(self, proposal_id: int, accept: bool) -> StoredProposal:
        """Mark a pending proposal accepted or rejected; StoreError when it is not pending."""
        row = self._db.execute(
            "SELECT id, project, text, status FROM proposals WHERE id = ?", (proposal_id,)
        ).fetchone()
        if row is None or row[3] != "pending":
            raise StoreError(f"no pending proposal {proposal_id}")
        status = "accepted" if accept else "rejected"
        self._write("UPDATE proposals SET status = ? WHERE id = ?", (status, proposal_id))
        return StoredProposal(row[0], row[1], row[2], status)

    def search_notes(self, query: str, project: str, limit: int = 10) -> list[Note]:
        """Notes of the user and of `project` that match the words of `query`, best first."""
        words = re.findall(r"\w+", query)
        if not words:
            return []
        match = " OR ".join(f'"{word}"' for word in words)
        rows = self._db.execute(
            """SELECT notes.id, scope, project, notes.kind, notes.text FROM notes_fts
               JOIN notes ON notes.id = notes_fts.rowid
               WHERE notes_fts MATCH ? AND (scope = 'user' OR project = ?)
               ORDER BY bm25(notes_fts) LIMIT ?""",
            (match, project, limit),
        ).fetchall()
        return [Note(r[0], NoteScope(r[1]), r[2], r[3], r[4]) for r in rows]
