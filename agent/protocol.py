"""The daemon's wire protocol: JSON-RPC 2.0 in Content-Length frames (as LSP), parsed once at the edge.

See docs/protocol.md. Every malformed input becomes a `ProtocolError` with a JSON-RPC code; the connection survives
it unless the stream itself can no longer be trusted (a frame too large to skip, a truncated frame).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from cove.errors import CoveError

PROTOCOL_VERSION = 1
#: Largest frame body accepted; larger frames are refused without being read.
MAX_FRAME_BYTES = 8 << 20
MAX_HEADER_BYTES = 4096

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
NOT_INITIALIZED = -32002


class ProtocolError(CoveError):
    """A message the daemon cannot accept; `fatal` when the connection must close after the reply."""

    def __init__(self, message: str, code: int, fatal: bool = False) -> None:
        super().__init__(message)
        self.rpc_code = code
        self.fatal = fatal


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
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as err:
        raise ProtocolError(
            f"truncated frame: {len(err.partial)} of {length} bytes", INVALID_REQUEST, fatal=True
        ) from err


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
    if not isinstance(method, str):
        raise ProtocolError('"method" must be a string', INVALID_REQUEST)
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int | str)):
        raise ProtocolError('"id" must be a number or a string', INVALID_REQUEST)
    if not isinstance(params, dict):
        raise ProtocolError('"params" must be an object', INVALID_PARAMS)
    return Request(method, params, ident)


def response(ident: int | str | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def error_response(ident: int | str | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


P = TypeVar("P")


def parse_params(kind: type[P], params: dict[str, Any], method: str) -> P:
    """Typed parameters of a method; unknown, missing or mistyped fields are InvalidParams errors."""
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(kind)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ProtocolError(f"{method}: unknown parameter(s) {unknown}", INVALID_PARAMS)
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in params:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"{method}: missing parameter {name!r}", INVALID_PARAMS)
            continue
        value, expected = params[name], hints[name]
        union = typing.get_origin(expected) in (typing.Union, types.UnionType)
        allowed = [typing.get_origin(t) or t for t in (typing.get_args(expected) if union else (expected,))]
        ok = any(isinstance(value, t) for t in allowed)
        if not ok or (isinstance(value, bool) and bool not in allowed):
            raise ProtocolError(f"{method}: parameter {name!r} has the wrong type ({value!r})", INVALID_PARAMS)
        values[name] = value
    return kind(**values)
