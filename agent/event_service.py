"""Events between the daemon and the outside: clients subscribe (events/subscribe) and publish (events/publish);
MQTT brings events from CI jobs and watchers. Each outside event reaches every subscriber and every live session's
reminder engine."""

from __future__ import annotations

import asyncio
from typing import Any

from cove.agent.clients import Client, Clients
from cove.agent.reminders import Event
from cove.agent.service import Method
from cove.agent.session_service import reminder_event
from cove.agent.sessions import SessionHub, outside_event
from cove.protocol.events import METHOD as AGENT_EVENT
from cove.protocol.events import event_params
from cove.protocol.framing import notification
from cove.protocol.params import EventPublish, EventsSubscribe


class EventService:
    """events/*, and the bus that outside events (MQTT, events/publish) travel on."""

    def __init__(self, clients: Clients, hub: SessionHub) -> None:
        self.clients, self.hub = clients, hub

    def methods(self) -> list[Method]:
        return [Method(EventsSubscribe, self.subscribe), Method(EventPublish, self.publish)]

    async def subscribe(self, client: Client, params: EventsSubscribe) -> None:
        client.subscribed = True

    async def publish(self, client: Client, params: EventPublish) -> dict[str, int]:
        return {"delivered": self.outside(params.topic, params.payload, exclude=client)}

    def outside(self, topic: str, payload: dict[str, Any], exclude: Client | None = None) -> int:
        """An event from outside: to subscribers (but `exclude`), and to every live session's reminders. Returns
        how many clients it went to."""
        if self.hub.live:
            self.clients.spawn(self._remind_all(outside_event(topic, payload)))
        message = notification("events/notify", {"topic": topic, "payload": payload})
        return self.clients.send(self.clients.subscribers(exclude), message)

    async def _remind_all(self, event: Event) -> None:
        written = await asyncio.to_thread(self.hub.feed_all, event)
        for session_id, reminders in written.items():
            for ident, reminder in reminders:
                message = notification(AGENT_EVENT, event_params(session_id, reminder_event(ident, reminder)))
                self.clients.send(self.clients.subscribers(), message)
