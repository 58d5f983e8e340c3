"""Events from outside the daemon over MQTT (aiomqtt), and the daemon's status published back.

Subscribes to `cove/<project>/events/#`: a CI job or a test watcher publishes there (JSON objects), and each event is
handed to the daemon's in-process bus. Publishes `cove/<project>/status` (retained) and session events to
`cove/<project>/sessions`. When the broker goes away the bridge reconnects with exponential backoff; a payload that
is not a JSON object is logged and dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiomqtt

from cove.config import EventsConfig

logger = logging.getLogger(__name__)

#: Receives (topic below `events/`, payload) for each event from outside.
Deliver = Callable[[str, dict[str, Any]], object]


def parse_event(topic: str, payload: bytes, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """The event's sub-topic and JSON payload, or None (logged) when the message is not a usable event."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        logger.warning("dropped MQTT message on %s: not JSON (%s)", topic, err)
        return None
    if not isinstance(data, dict):
        logger.warning("dropped MQTT message on %s: expected a JSON object, got %s", topic, type(data).__name__)
        return None
    return topic.removeprefix(prefix) or "event", data


class MqttBridge:
    """Keeps one connection to the broker alive for the daemon's lifetime."""

    def __init__(self, config: EventsConfig, deliver: Deliver, status: Callable[[], dict[str, Any]]) -> None:
        self.config = config
        self.deliver = deliver
        self.status = status
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        base = f"cove/{config.project}"
        self.events_prefix = f"{base}/events/"
        self.status_topic = f"{base}/status"
        self.sessions_topic = f"{base}/sessions"

    async def run(self) -> None:
        """Connect, subscribe and deliver until cancelled, reconnecting with backoff."""
        delay = 0.5
        while True:
            try:
                will = aiomqtt.Will(self.status_topic, json.dumps({"state": "gone"}), retain=True)
                async with aiomqtt.Client(self.config.mqtt_host, self.config.mqtt_port, will=will) as client:
                    self._client = client
                    await client.subscribe(self.events_prefix + "#")
                    await client.publish(self.status_topic, json.dumps(self.status()), retain=True)
                    self.connected.set()
                    delay = 0.5
                    logger.info("MQTT bridge connected to %s:%d", self.config.mqtt_host, self.config.mqtt_port)
                    async for message in client.messages:
                        event = parse_event(message.topic.value, bytes(message.payload or b""), self.events_prefix)
                        if event is not None:
                            self.deliver(*event)
            except aiomqtt.MqttError as err:
                self.connected.clear()
                self._client = None
                logger.warning("MQTT broker unavailable (%s); retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max_s)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish if connected; events while the broker is away are not queued (status is re-sent on reconnect)."""
        client = self._client
        if client is None:
            return
        try:
            await client.publish(topic, json.dumps(payload))
        except aiomqtt.MqttError as err:
            logger.warning("could not publish to %s: %s", topic, err)
