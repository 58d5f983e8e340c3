"""The daemon's session methods: create, list, resume and close sessions; add messages; feed editor events to a
session's reminder engine (or to its run in progress)."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from cove.agent.clients import Client
from cove.agent.reminders import Event, Reminder
from cove.agent.service import Method
from cove.agent.sessions import SessionHub, event_from_payload
from cove.agent.store import MemoryStore
from cove.protocol.events import METHOD as AGENT_EVENT
from cove.protocol.events import MessageAdded, ReminderShown, event_params
from cove.protocol.framing import notification
from cove.protocol.params import SessionClose, SessionCreate, SessionEvent, SessionList, SessionResume, SessionSend

#: Where a session's editor events go while it has a run in progress (None: no run).
RunInbox = Callable[[str], "queue.SimpleQueue[Event] | None"]


def reminder_event(ident: int, reminder: Reminder) -> ReminderShown:
    """A reminder kept in a session's transcript (message `ident`), as the event its clients get."""
    return ReminderShown(reminder.type.value, reminder.level.value, reminder.text, id=ident, count=reminder.count)


class SessionService:
    """session/*; `inbox` finds a session's run in progress, `announce` tells the outside a session was created."""

    def __init__(
        self, store: MemoryStore, hub: SessionHub, inbox: RunInbox, announce: Callable[[dict[str, Any]], None]
    ) -> None:
        self.store, self.hub, self.inbox, self.announce = store, hub, inbox, announce

    def methods(self) -> list[Method]:
        return [
            Method(SessionCreate, self.create),
            Method(SessionList, self.list),
            Method(SessionResume, self.resume),
            Method(SessionClose, self.close),
            Method(SessionSend, self.send),
            Method(SessionEvent, self.event),
        ]

    async def create(self, client: Client, params: SessionCreate) -> dict[str, Any]:
        session = await asyncio.to_thread(self.store.create_session, params.project, params.title)
        await asyncio.to_thread(self.hub.open, session)
        self.announce({"event": "created", "session_id": session.id, "project": session.project})
        return asdict(session)

    async def list(self, client: Client, params: SessionList) -> list[dict[str, Any]]:
        sessions = await asyncio.to_thread(self.store.sessions, params.project, params.include_closed)
        return [asdict(session) for session in sessions]

    async def resume(self, client: Client, params: SessionResume) -> dict[str, Any]:
        session = await asyncio.to_thread(self.store.session, params.session_id)
        self.hub.attach(session.id)
        messages = await asyncio.to_thread(self.store.transcript, params.session_id)
        return {"session": asdict(session), "transcript": [asdict(m) for m in messages]}

    async def close(self, client: Client, params: SessionClose) -> None:
        await asyncio.to_thread(self.store.close_session, params.session_id)
        self.hub.close(params.session_id)

    async def send(self, client: Client, params: SessionSend) -> dict[str, Any]:
        message_id = await asyncio.to_thread(self.store.append_message, params.session_id, "user", params.text)
        await client.send(notification(AGENT_EVENT, event_params(params.session_id, MessageAdded(message_id))))
        return {"message_id": message_id}

    async def event(self, client: Client, params: SessionEvent) -> dict[str, Any]:
        event = event_from_payload(params.type, params.data)
        inbox = self.inbox(params.session_id)
        if inbox is not None:  # a run is working in this session: its own reminders take the event
            inbox.put(event)
            return {"reminders": [], "queued": True}
        written = await asyncio.to_thread(self.hub.feed, params.session_id, event)
        payloads = [event_params(params.session_id, reminder_event(ident, r)) for ident, r in written]
        for payload in payloads:
            await client.send(notification(AGENT_EVENT, payload))
        return {"reminders": payloads}
