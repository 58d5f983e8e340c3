"""What the daemon keeps per live session: project memory read in at the start, and a reminder engine fed by events.

Reminders land in the transcript as tagged user-role messages, so the user sees exactly what the model was told.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from cove.agent.reminders import (
    CallDenied,
    ContextUsage,
    DiagnosticsChanged,
    Event,
    External,
    FileSaved,
    PlanApproved,
    Reminder,
    ReminderEngine,
    StepTaken,
    TestsFailed,
    TestsPassed,
    TodoUpdated,
    ToolResult,
)
from cove.agent.store import MemoryStore, Session
from cove.config import ReminderConfig
from cove.protocol.codec import structure
from cove.protocol.codes import INVALID_PARAMS
from cove.protocol.framing import ProtocolError

#: The project memory file read into every session, at the repository root.
PROJECT_MEMORY = "COVE.md"
MAX_PROJECT_MEMORY_BYTES = 64 << 10

EVENT_TYPES: dict[str, type[Any]] = {
    "file_saved": FileSaved,
    "diagnostics_changed": DiagnosticsChanged,
    "tests_failed": TestsFailed,
    "tests_passed": TestsPassed,
    "tool_result": ToolResult,
    "tool_denied": CallDenied,
    "todo_updated": TodoUpdated,
    "context_usage": ContextUsage,
    "plan_approved": PlanApproved,
    "external": External,
    "step": StepTaken,
}


def event_from_payload(kind: str, data: dict[str, Any]) -> Event:
    """A typed reminder event from the protocol's `{type, data}`; unknown types and bad fields are InvalidParams."""
    event_type = EVENT_TYPES.get(kind)
    if event_type is None:
        raise ProtocolError(f"unknown event type {kind!r} (known: {', '.join(EVENT_TYPES)})", INVALID_PARAMS)
    event: Event = structure(event_type, data, kind)
    return event


def outside_event(topic: str, payload: dict[str, Any]) -> Event:
    """An event from MQTT or events/publish: typed when it says its type, else shown as it came."""
    kind = payload.get("type")
    if isinstance(kind, str) and kind in EVENT_TYPES:
        try:
            return event_from_payload(kind, {k: v for k, v in payload.items() if k != "type"})
        except ProtocolError:
            pass
    return External(topic, json.dumps(payload, ensure_ascii=False)[:500])


def read_project_memory(project: str) -> str | None:
    """The project's COVE.md, if it has one (capped in size)."""
    path = Path(project) / PROJECT_MEMORY
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_PROJECT_MEMORY_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


class SessionHub:
    """Reminder engines of the sessions this daemon has served; thread-safe, called from worker threads."""

    def __init__(self, store: MemoryStore, reminders: ReminderConfig) -> None:
        self.store = store
        self.reminders = reminders
        self._engines: dict[str, ReminderEngine] = {}
        self._lock = threading.Lock()
        ReminderEngine(reminders)  # a bad `[reminders]` config fails at start, not in the middle of a session

    def open(self, session: Session) -> None:
        """Start a session: its project's COVE.md goes into the transcript as a system message."""
        memory = read_project_memory(session.project)
        if memory:
            self.store.append_message(session.id, "system", f"Project memory ({PROJECT_MEMORY}):\n{memory}")
        self._engine(session.id)

    @property
    def live(self) -> bool:
        """Whether any session is being served (else outside events need no reminder work)."""
        return bool(self._engines)

    def attach(self, session_id: str) -> None:
        """Serve a resumed session: reminders start counting afresh."""
        with self._lock:
            self._engine(session_id)

    def feed(self, session_id: str, event: Event) -> list[tuple[int, Reminder]]:
        """Feed one event to a session; its reminders are written to the transcript and returned with their ids."""
        self.store.session(session_id)  # an unknown id is an error, not a new engine
        with self._lock:
            reminders = self._engine(session_id).feed(event)
        return [(self.store.append_message(session_id, "user", r.as_message()["content"]), r) for r in reminders]

    def feed_all(self, event: Event) -> dict[str, list[tuple[int, Reminder]]]:
        """Feed an outside event to every live session."""
        with self._lock:
            sessions = list(self._engines)
        return {session_id: self.feed(session_id, event) for session_id in sessions}

    def close(self, session_id: str) -> None:
        with self._lock:
            self._engines.pop(session_id, None)

    def _engine(self, session_id: str) -> ReminderEngine:
        if session_id not in self._engines:
            self._engines[session_id] = ReminderEngine(self.reminders)
        return self._engines[session_id]


def append_project_memory(project: str, text: str) -> Path:
    """Add an accepted proposal to the end of the project's COVE.md (created when missing)."""
    path = Path(project) / PROJECT_MEMORY
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        separator = "" if not existing or existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
        with path.open("a", encoding="utf-8") as handle:
            handle.write(separator + text.rstrip() + "\n")
    except OSError as err:
        raise ProtocolError(f"cannot write {path}: {err.strerror}", INVALID_PARAMS) from err
    return path
