"""An asyncio connection to the daemon, for the faces that run an event loop (the language server, the ACP agent):
typed requests, and each session's events on a queue.

The daemon is started on first use (as every Cove client does); a lost connection is reopened on the next request.
Only the protocol (`cove.protocol`) is shared with the daemon: nothing here imports the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

from cove import __version__
from cove.daemon_client import ensure_daemon
from cove.errors import CoveError, DaemonError, DaemonUnavailable
from cove.protocol.events import METHOD as AGENT_EVENT
from cove.protocol.events import AgentEvent, Finished, parse_event
from cove.protocol.framing import PROTOCOL_VERSION, encode_frame, read_frame, request, result_of
from cove.protocol.params import InitializeParams, Params
from cove.runtime import DaemonPaths, daemon_paths

logger = logging.getLogger(__name__)


class DaemonLink:
    """One connection, shared by every request of this face; `name` is how the daemon lists it among its clients."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._queues: dict[str, asyncio.Queue[AgentEvent]] = {}
        self._connecting = asyncio.Lock()

    async def call(self, params: Params) -> Any:
        """Send a request and wait for its result; DaemonError carries the daemon's error message."""
        writer = await self._connect()
        return await self._send(writer, params)

    def events(self, session_id: str) -> asyncio.Queue[AgentEvent]:
        """The queue of a session's events (created on first ask; before the run starts)."""
        return self._queues.setdefault(session_id, asyncio.Queue())

    def forget(self, session_id: str) -> None:
        self._queues.pop(session_id, None)

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._writer is not None:
            self._writer.close()

    async def _send(self, writer: asyncio.StreamWriter, params: Params) -> Any:
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        writer.write(encode_frame(request(ident, params.method, params.to_wire())))
        await writer.drain()
        return await future

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            paths = daemon_paths()
            await asyncio.to_thread(_start_daemon, paths)
            reader, writer = await asyncio.open_unix_connection(str(paths.socket), limit=16 << 20)
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader))
            await self._send(writer, InitializeParams(PROTOCOL_VERSION, f"{self._name} {__version__}"))
        return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (body := await read_frame(reader)) is not None:
                self._dispatch(json.loads(body))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, CoveError) as err:
            logger.info("the daemon connection ended: %s", err)
        finally:
            self._writer = None
            lost = DaemonUnavailable("the connection to the Cove daemon was lost; try again")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()
            for queue in self._queues.values():
                queue.put_nowait(Finished(stopped="error", error=str(lost)))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("method") == AGENT_EVENT:
            try:
                session_id, event = parse_event(message.get("params"))
            except CoveError as err:
                logger.warning("an event from the daemon was not understood: %s", err)
                return
            if session_id in self._queues:
                self._queues[session_id].put_nowait(event)
            return
        future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
        if future is None or future.done():
            return
        try:
            future.set_result(result_of(message))
        except DaemonError as err:
            future.set_exception(err)


def _start_daemon(paths: DaemonPaths) -> None:
    with contextlib.closing(ensure_daemon(paths)):
        pass
