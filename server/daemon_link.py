"""The language server's connection to the agent daemon: requests, and each session's `agent/event`s on a queue.

The daemon is started on first use (as every Cove client does); a lost connection is reopened on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from cove import __version__
from cove.agent.protocol import PROTOCOL_VERSION, encode_frame, read_frame
from cove.daemon_client import DaemonError, DaemonUnavailable, ensure_daemon
from cove.runtime import daemon_paths


class DaemonLink:
    """One connection, shared by every agent action of this language server."""

    def __init__(self) -> None:
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._connecting = asyncio.Lock()

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and wait for its result; DaemonError carries the daemon's error message."""
        writer = await self._connect()
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        writer.write(encode_frame({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}))
        await writer.drain()
        return await future

    def events(self, session_id: str) -> asyncio.Queue[dict[str, Any]]:
        """The queue of a session's `agent/event`s (created on first ask; before the run starts)."""
        return self._queues.setdefault(session_id, asyncio.Queue())

    def forget(self, session_id: str) -> None:
        self._queues.pop(session_id, None)

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._writer is not None:
            self._writer.close()

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            paths = daemon_paths()
            await asyncio.to_thread(_start_daemon, paths)
            reader, writer = await asyncio.open_unix_connection(str(paths.socket), limit=16 << 20)
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader))
        hello = {"protocol_version": PROTOCOL_VERSION, "client": f"cove-lsp {__version__}"}
        await self.request("initialize", hello)
        return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (body := await read_frame(reader)) is not None:
                message = json.loads(body)
                if message.get("method") == "agent/event":
                    session_id = message["params"].get("session_id", "")
                    if session_id in self._queues:
                        self._queues[session_id].put_nowait(message["params"])
                    continue
                future = self._pending.pop(message.get("id"), None)
                if future is None or future.done():
                    continue
                if "error" in message:
                    future.set_exception(DaemonError(message["error"]["message"], message["error"]["code"]))
                else:
                    future.set_result(message.get("result"))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._writer = None
            lost = DaemonUnavailable("the connection to the Cove daemon was lost; try again")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()
            for session_id, queue in self._queues.items():
                queue.put_nowait(
                    {
                        "session_id": session_id,
                        "type": "finished",
                        "stopped": "error",
                        "steps": 0,
                        "answer": "",
                        "error": str(lost),
                    }
                )


def _start_daemon(paths: Any) -> None:
    with contextlib.closing(ensure_daemon(paths)):
        pass
