"""The memory store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cove.agent.redact import redact
from cove.agent.store import MIGRATIONS, MemoryStore, NoteScope, StoreError


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "memory.db")


def test_new_database_is_migrated_to_the_latest_schema_in_wal_mode(store: MemoryStore) -> None:
    assert store.schema_version == len(MIGRATIONS)
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    first = MemoryStore(tmp_path / "m.db")
    session = first.create_session("/p", "fix the parser")
    first.append_message(session.id, "user", "please fix it")
    first.close()
    again = MemoryStore(tmp_path / "m.db")
    assert [m.content for m in again.transcript(session.id)] == ["please fix it"]


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    MemoryStore(path).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="newer Cove"):
        MemoryStore(path)


def test_sessions_list_resume_close(store: MemoryStore) -> None:
    a = store.create_session("/p", "one")
    b = store.create_session("/p", "two")
    store.create_session("/other", "three")
    store.append_message(a.id, "user", "hello")  # a is now the most recent
    assert [s.id for s in store.sessions("/p")] == [a.id, b.id]
    store.close_session(b.id)
    assert [s.id for s in store.sessions("/p")] == [a.id]
    assert store.session(b.id).closed
    with pytest.raises(StoreError, match="no session"):
        store.append_message("missing", "user", "x")


def test_notes_search_by_words_within_scope(store: MemoryStore) -> None:
    store.write_note(NoteScope.PROJECT, "/p", "convention", "Tests run with pytest -q from the repository root")
    store.write_note(NoteScope.PROJECT, "/other", "fact", "pytest is not used here; unittest is")
    store.write_note(NoteScope.USER, "/p", "fact", "The user prefers short commit messages")
    found = store.search_notes("how do I run the tests with pytest?", "/p")
    assert found[0].text.startswith("Tests run with pytest")
    assert all(n.project in ("/p", "") for n in found)
    assert store.search_notes("commit", "/anywhere")[0].scope is NoteScope.USER
    assert store.search_notes("!!!", "/p") == []


def test_secrets_are_redacted_before_they_are_written(store: MemoryStore) -> None:
    secret = "sk-abcdefghijklmnopqrstuvwxyz123456"
    session = store.create_session("/p", "deploy")
    store.append_message(session.id, "user", f"use OPENAI_API_KEY={secret}")
    store.write_note(NoteScope.PROJECT, "/p", "fact", f"the deploy password: hunter2hunter2 and key {secret}")
    store.offload_output(session.id, "run_command", "AWS key AKIAABCDEFGHIJKLMNOP")
    raw = store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes()
    for planted in (secret.encode(), b"hunter2hunter2", b"AKIAABCDEFGHIJKLMNOP"):
        assert planted not in raw
    assert "[REDACTED" in store.transcript(session.id)[0].content


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "xoxb-1234567890-abcdefghij",
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
        "https://alice:pa55word@example.com/repo.git",
        'DB_PASSWORD="correct horse battery"',
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_redaction_catches_common_secrets(text: str) -> None:
    assert "[REDACTED" in redact(text)


def test_redaction_leaves_ordinary_code_alone() -> None:
    code = "def token_bucket(rate):\n    tokens = rate * 2\n    return tokens"
    assert redact(code) == code


def test_an_old_schema_is_migrated_forward_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    old.execute("INSERT INTO notes (scope, project, kind, text, created) VALUES ('user', '', 'fact', 'kept', 0)")
    old.close()
    store = MemoryStore(path)
    assert store.schema_version == len(MIGRATIONS) >= 2
    assert [n.text for n in store.search_notes("kept", "/p")] == ["kept"]
    assert store.propose("/p", "a new convention").status == "pending"
