"""The ACP face's stdio, guarded: only well-formed JSON-RPC messages reach the SDK's connection.

The SDK logs a line that is not JSON and goes on, but stops reading for good at a message that is JSON and not an
object (`[1, 2]`), and takes an object that is neither a request, a notification nor a response as a response. Here
every line is checked first: what is not a JSON-RPC message is answered with the error JSON-RPC names (parse error,
invalid request; `id` null where none could be read) and never passed on, so no client input ends `cove acp`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
from typing import Any

import acp

from cove.errors import InputError
from cove.protocol.codes import INVALID_REQUEST, PARSE_ERROR

logger = logging.getLogger(__name__)

#: The longest message taken (a prompt with whole files embedded stays well under it).
LIMIT_BYTES = 50 * 1024 * 1024


async def guarded_stdio() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """(messages from the client, the writer to it): stdin filtered as the module says, stdout as it is."""
    for stream in (sys.stdin, sys.stdout):
        mode = os.fstat(stream.fileno()).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise InputError(
                f"cove acp speaks over pipes: its {stream.name} is a file (an editor starts it with pipes)"
            )
    raw, writer = await acp.stdio_streams(limit=LIMIT_BYTES)
    messages = asyncio.StreamReader(limit=LIMIT_BYTES)
    task = asyncio.get_running_loop().create_task(_pump(raw, messages, writer))
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    _tasks.add(task)
    return messages, writer


_tasks: set[asyncio.Task[None]] = set()


async def _pump(raw: asyncio.StreamReader, messages: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    dropping = False  # in a message too long to take, until its end
    try:
        while True:
            try:
                line = await raw.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                line = end.partial
                if not line.strip():
                    break
            except asyncio.LimitOverrunError as over:
                await raw.readexactly(over.consumed)
                dropping = True
                continue
            if dropping:
                dropping = False
                await _reject(writer, None, INVALID_REQUEST, f"a message longer than {LIMIT_BYTES} bytes was dropped")
            elif line.strip():
                problem = check(line)
                if problem is None:
                    messages.feed_data(line if line.endswith(b"\n") else line + b"\n")
                else:
                    await _reject(writer, *problem)
    finally:
        messages.feed_eof()


def check(line: bytes) -> tuple[Any, int, str] | None:
    """None for a JSON-RPC message the connection can take; else (id to answer, code, message)."""
    try:
        message = json.loads(line)
    except ValueError as err:
        return None, PARSE_ERROR, f"not JSON: {err}"
    if not isinstance(message, dict):
        return None, INVALID_REQUEST, f"a message must be a JSON object, not {type(message).__name__}"
    ident = message.get("id")
    usable = ident if isinstance(ident, int | str) and not isinstance(ident, bool) else None
    if "id" in message and usable is None and ident is not None:
        return None, INVALID_REQUEST, "id must be a number or a string"
    method = message.get("method")
    if method is None:
        if "id" in message and ("result" in message or "error" in message):
            return None  # a response to one of Cove's requests
        return usable, INVALID_REQUEST, "a message needs a method (a request) or a result or error (a response)"
    if not isinstance(method, str):
        return usable, INVALID_REQUEST, "method must be a string"
    if "params" in message and not isinstance(message["params"], dict | list | type(None)):
        return usable, INVALID_REQUEST, "params must be an object"
    return None


async def _reject(writer: asyncio.StreamWriter, ident: Any, code: int, message: str) -> None:
    logger.warning("a client message was refused: %s", message)
    error = {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}
    writer.write(json.dumps(error).encode() + b"\n")
    await writer.drain()
