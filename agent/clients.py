"""The daemon's clients: each connection, and sending to many of them without letting a slow one hold up the rest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from cove.protocol.framing import encode_frame


@dataclass(eq=False)
class Client:
    """One connection: its writer, whether it has done the handshake, and whether it subscribed to events."""

    writer: asyncio.StreamWriter
    remote: bool = False
    initialized: bool = False
    name: str = "unknown"
    subscribed: bool = False

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))
        await self.writer.drain()


@dataclass
class Clients:
    """Every connected client, and deliveries in flight (each runs on its own, with a time limit)."""

    connected: set[Client] = field(default_factory=set)
    _deliveries: set[asyncio.Task[None]] = field(default_factory=set)

    def subscribers(self, exclude: Client | None = None) -> list[Client]:
        return [c for c in self.connected if c.subscribed and c is not exclude]

    def send(self, targets: Iterable[Client], message: dict[str, Any]) -> int:
        """Send `message` to each target without waiting; returns how many it went to."""
        count = 0
        for target in targets:
            self.spawn(_send_quietly(target, message))
            count += 1
        return count

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)


async def _send_quietly(client: Client, message: dict[str, Any]) -> None:
    # A subscriber that does not read must not hold up the sender, nor fail it.
    with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
        await asyncio.wait_for(client.send(message), timeout=5)
