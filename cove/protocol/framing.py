"""Framing of the daemon's protocol: JSON-RPC 2.0 in Content-Length frames (as LSP), with their limits, read the
same way by the daemon (asyncio) and by its clients (asyncio or a blocking socket).

See docs/protocol.md. Every malformed input becomes a `ProtocolError` with a JSON-RPC code; the connection survives
it unless the stream itself can no longer be trusted (a frame too large to skip, a truncated frame).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from cove.errors import CoveError, DaemonError
from cove.protocol.codes import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR

PROTOCOL_VERSION = 1
#: Largest frame body accepted; larger frames are refused without being read.
MAX_FRAME_BYTES = 8 << 20
MAX_HEADER_BYTES = 4096


class ProtocolError(CoveError):
    """A message the daemon cannot accept; `fatal` when the connection must close after the reply; `request_id`
    when the message's id could be read (the reply carries it)."""

    def __init__(self, message: str, code: int, fatal: bool = False, request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.rpc_code = code
        self.fatal = fatal
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """A request (with an id) or a notification (id None)."""

    method: str
    params: dict[str, Any]
    id: int | str | None


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame's body, or None when the peer closed the connection between frames."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial.strip():
            return None
        raise ProtocolError("connection closed in the middle of a header", INVALID_REQUEST, fatal=True) from err
    except asyncio.LimitOverrunError as err:
        raise ProtocolError("header too long", INVALID_REQUEST, fatal=True) from err
    length = content_length(head)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as err:
        raise ProtocolError(
            f"truncated frame: {len(err.partial)} of {length} bytes", INVALID_REQUEST, fatal=True
        ) from err


def content_length(head: bytes) -> int:
    """The body's length from a frame's header (up to and including the blank line), within the limits."""
    if len(head) > MAX_HEADER_BYTES:
        raise ProtocolError("header too long", INVALID_REQUEST, fatal=True)
    length = None
    for line in head.decode("ascii", errors="replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise ProtocolError(f"bad Content-Length {value.strip()!r}", INVALID_REQUEST, fatal=True) from None
    if length is None or length < 0:
        raise ProtocolError("missing Content-Length header", INVALID_REQUEST, fatal=True)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(
            f"frame of {length} bytes is larger than the limit of {MAX_FRAME_BYTES}", INVALID_REQUEST, fatal=True
        )
    return length


class FrameBuffer:
    """Frames out of a byte stream that arrives in pieces (a blocking socket's `recv`)."""

    def __init__(self) -> None:
        self._data = b""

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def next_frame(self) -> bytes | None:
        """The next whole frame's body, or None until more bytes arrive."""
        end = self._data.find(b"\r\n\r\n")
        if end < 0:
            if len(self._data) > MAX_HEADER_BYTES:
                raise ProtocolError("header too long", INVALID_REQUEST, fatal=True)
            return None
        length = content_length(self._data[: end + 4])
        start = end + 4
        if len(self._data) < start + length:
            return None
        body, self._data = self._data[start : start + length], self._data[start + length :]
        return body


def encode_frame(message: dict[str, Any]) -> bytes:
    """A message as one frame."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def parse_request(body: bytes) -> Request:
    """A frame's body as a request; ProtocolError (not fatal) when it is not one."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProtocolError(f"not JSON: {err}", PARSE_ERROR) from err
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise ProtocolError('not a JSON-RPC 2.0 object (need "jsonrpc": "2.0")', INVALID_REQUEST)
    method, params, ident = message.get("method"), message.get("params", {}), message.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int | str)):
        raise ProtocolError('"id" must be a number or a string', INVALID_REQUEST)
    if not isinstance(method, str):
        raise ProtocolError('"method" must be a string', INVALID_REQUEST, request_id=ident)
    if not isinstance(params, dict):
        raise ProtocolError(f'{method}: "params" must be an object', INVALID_PARAMS, request_id=ident)
    return Request(method, params, ident)


def response(ident: int | str | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def error_response(ident: int | str | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def request(ident: int | str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}


def result_of(message: dict[str, Any]) -> Any:
    """A response's result, or its error raised as a DaemonError (the daemon's code and message)."""
    error = message.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise DaemonError(str(error.get("message", "")), code if isinstance(code, int) else INTERNAL_ERROR)
    return message.get("result")
