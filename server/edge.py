"""The server's edge: every request gets exactly one reply, whatever the client sends, and no dialog is ever shown
for a client's protocol error.

pygls structures a message's params before dispatch and, when that fails, drops the request (its id is lost) and
shows the user "Error in server". Here a message that cannot be structured becomes a `Malformed` one, answered with
-32602 (or -32600) and its id; Cove's errors map to their JSON-RPC codes in one place; unexpected errors reach the
client without a traceback. What carries no usable id (a body that is not JSON, not an object, a bad id) is logged
and not answered: JSON-RPC would answer it with id null, which Neovim shows the user as an error.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from cattrs import transform_error
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol

from cove.errors import CoveError
from cove.protocol.codes import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST
from cove.server.cove_methods import NOTIFICATION_TYPES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Malformed:
    """A message that is not valid LSP; answered with `code` when it carries a request id."""

    id: int | str | None
    method: str
    code: int
    reason: str


def request_id(data: Any) -> int | str | None:
    """The id of a would-be request (a raw object or a structured message), when it has a usable one."""
    ident = data.get("id") if isinstance(data, dict) else getattr(data, "id", None)
    return ident if isinstance(ident, int | str) and not isinstance(ident, bool) else None


def _describe(err: BaseException) -> str:
    """What was wrong, field by field, with the fields named as on the wire (`$.params.textDocument.uri`)."""
    return _describe_cause(err.__cause__) if err.__cause__ is not None else str(err)


def _describe_cause(cause: BaseException) -> str:
    try:
        return "; ".join(_wire_path(problem) for problem in transform_error(cause))
    except Exception:  # not a cattrs error: its own words
        return str(cause) or cause.__class__.__name__


def _wire_path(problem: str) -> str:
    text, at, path = problem.rpartition(" @ ")
    if not at:
        return problem
    return f"{text} @ {re.sub(r'_([a-z])', lambda m: m.group(1).upper(), path)}"


class CoveProtocol(LanguageServerProtocol):
    """pygls' LSP protocol with an edge that answers everything (see the module's docstring)."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" not in data:
            return data  # a nested object, or a message without "jsonrpc" (refused in handle_message)
        method = data.get("method")
        if isinstance(method, str) and method in NOTIFICATION_TYPES:
            return self._structure_cove_notification(method, data)
        try:
            return super().structure_message(data)
        except JsonRpcException as err:
            method = data.get("method")
            if method is None:  # a response of the client's that does not fit: never answer a response
                return Malformed(None, "?", INVALID_PARAMS, f"a response that cannot be read: {_describe(err)}")
            name = method if isinstance(method, str) else "?"
            return Malformed(request_id(data), name, INVALID_PARAMS, f"invalid params for {name}: {_describe(err)}")

    def _structure_cove_notification(self, method: str, data: dict[str, Any]) -> Any:
        """One of Cove's own notifications (cove_methods.py), typed; malformed, it is only logged."""
        if "id" in data:  # dispatched as a notification it would never be answered
            return Malformed(request_id(data), method, INVALID_REQUEST, f"{method} is a notification: send no id")
        try:
            return self._converter.structure(data, NOTIFICATION_TYPES[method])
        except Exception as err:
            return Malformed(None, method, INVALID_PARAMS, f"invalid params for {method}: {_describe_cause(err)}")

    def handle_message(self, message: Any) -> None:
        if not isinstance(message, Malformed) and getattr(message, "jsonrpc", None) != "2.0":
            message = Malformed(
                request_id(message),
                "?",
                INVALID_REQUEST,
                'not a JSON-RPC 2.0 message (need an object with "jsonrpc": "2.0")',
            )
        if isinstance(message, Malformed):
            self.refuse(message)
            return
        super().handle_message(message)

    def refuse(self, message: Malformed) -> None:
        """Answer a malformed request with its error; a notification (no id) is only logged."""
        logger.warning("refused a malformed message (%s): %s", message.code, message.reason)
        if message.id is not None:
            self._send_response(message.id, error=types.ResponseError(code=message.code, message=message.reason))

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """Cove's errors as their JSON-RPC codes; any other error as InternalError without a traceback."""
        if future.cancelled() or future.exception() is None:
            super()._send_handler_result(future, msg_id=msg_id)
            return
        error = future.exception()
        if isinstance(error, JsonRpcException):
            code, message = error.code, error.message
        elif isinstance(error, CoveError):
            code, message = error.rpc_code, f"Cove: {error}"
        else:
            logger.error("request %s failed", msg_id, exc_info=error)
            code, message = INTERNAL_ERROR, f"internal error in Cove ({error.__class__.__name__}: {error}); see its log"
        self._request_futures.pop(msg_id, None)
        self._send_response(msg_id, error=types.ResponseError(code=code, message=message))
