"""A small blocking client of the daemon's socket protocol, and starting the daemon when it is absent."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cove.errors import CoveError
from cove.runtime import DaemonPaths

PROTOCOL_VERSION = 1


class DaemonUnavailable(CoveError):
    """No daemon answers on the socket."""

    exit_code = 69


class DaemonError(CoveError):
    """The daemon answered a request with an error."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.rpc_code = code


class DaemonClient:
    """One connection to the daemon; `call` sends a request and returns its result."""

    def __init__(self, socket_path: Path, timeout: float = 30.0, name: str = "cove-cli") -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(socket_path))
        except OSError as err:
            self._sock.close()
            raise DaemonUnavailable(
                f"no Cove daemon at {socket_path} ({err.strerror}); start one with `cove daemon`"
            ) from err
        self._buffer = b""
        self._ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []
        self.server = self.call("initialize", {"protocol_version": PROTOCOL_VERSION, "client": name})

    def set_timeout(self, seconds: float | None) -> None:
        """How long a receive may wait; None: without end."""
        self._sock.settimeout(seconds)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self._sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def receive(self) -> dict[str, Any]:
        """The next message from the daemon."""
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = int(head.split(b":", 1)[1])
        self._buffer = rest
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        message: dict[str, Any] = json.loads(body)
        return message

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise DaemonUnavailable("the daemon closed the connection")
        self._buffer += chunk

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send a request and wait for its response; notifications meanwhile are kept in `notifications`."""
        ident = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params or {}})
        while True:
            message = self.receive()
            if "method" in message:
                self.notifications.append(message)
                continue
            if message.get("id") != ident:
                continue
            if "error" in message:
                raise DaemonError(message["error"]["message"], message["error"]["code"])
            return message.get("result")


def ensure_daemon(paths: DaemonPaths, timeout: float = 15.0) -> DaemonClient:
    """A client of the running daemon, starting one in the background first when none answers."""
    try:
        return DaemonClient(paths.socket)
    except DaemonUnavailable:
        pass
    subprocess.Popen(
        [sys.executable, "-m", "cove.cli", "daemon"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            return DaemonClient(paths.socket)
        except DaemonUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
