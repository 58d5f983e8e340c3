"""Every JSON-RPC error code Cove answers with, in one table: the standard ones, LSP's, and Cove's own (the daemon's
and the language server's replies share them)."""

from __future__ import annotations

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: A request before `initialize` (the daemon's socket).
NOT_INITIALIZED = -32002
#: A TCP client without the daemon's token.
UNAUTHORIZED = -32001
#: A tool call refused before it ran (Cove's safety policy, a hook, the user).
TOOL_DENIED = -32003
#: The project is busy with an agent run (checkpoints cannot be restored meanwhile).
BUSY = -32004
#: The request is well-formed but the configured model cannot serve it (agent/run with a base model); the message
#: says what to configure.
UNFIT_MODEL = -32010
#: LSP's RequestCancelled: a request stopped by `$/cancelRequest` or `complete/cancel`.
REQUEST_CANCELLED = -32800
