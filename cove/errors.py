"""One error hierarchy for Cove, and the one place where errors map to exit codes and JSON-RPC codes."""

from __future__ import annotations

from cove.protocol.codes import INTERNAL_ERROR, INVALID_PARAMS, REQUEST_CANCELLED


class CoveError(Exception):
    """An error whose message tells the user what went wrong and what to do about it."""

    #: Process exit status used by the CLI.
    exit_code = 1
    #: JSON-RPC error code used by the LSP server and the daemon's socket protocol.
    rpc_code = INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(CoveError):
    """A config file, environment variable or LSP setting is unreadable, unknown or of the wrong type."""

    exit_code = 78  # EX_CONFIG
    rpc_code = INVALID_PARAMS


class ModelError(CoveError):
    """The model cannot be found, assembled, loaded or run."""

    exit_code = 69  # EX_UNAVAILABLE


class ModelRefused(ModelError):
    """The daemon answered that the model asked for cannot load (not that the daemon is away): no other process
    would load it either."""


class InputError(CoveError):
    """The user asked for something that does not exist: a missing file, a line out of range."""

    exit_code = 65  # EX_DATAERR
    rpc_code = INVALID_PARAMS


class Cancelled(CoveError):
    """A request was cancelled because a newer one superseded it or the client asked."""

    exit_code = 130
    rpc_code = REQUEST_CANCELLED


class DaemonUnavailable(CoveError):
    """No daemon answers on the socket."""

    exit_code = 69  # EX_UNAVAILABLE


class DaemonError(CoveError):
    """The daemon answered a request with an error; `rpc_code` is its JSON-RPC code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.rpc_code = code
