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

from cove.errors import DaemonUnavailable
from cove.protocol.framing import PROTOCOL_VERSION, FrameBuffer, encode_frame, request, result_of
from cove.protocol.params import InitializeParams, Params
from cove.runtime import DaemonPaths


class DaemonClient:
    """One connection to the daemon; `call` sends a typed request and returns its result."""

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
        self._frames = FrameBuffer()
        self._ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []
        self.server = self.call(InitializeParams(PROTOCOL_VERSION, name))

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
        self._sock.sendall(encode_frame(message))

    def send_request(self, params: Params) -> int:
        """Send a request without waiting for its reply (it arrives through `receive`); returns its id."""
        ident = next(self._ids)
        self.send(request(ident, params.method, params.to_wire()))
        return ident

    def receive(self) -> dict[str, Any]:
        """The next message from the daemon."""
        while (body := self._frames.next_frame()) is None:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise DaemonUnavailable("the daemon closed the connection")
            self._frames.feed(chunk)
        message: dict[str, Any] = json.loads(body)
        return message

    def call(self, params: Params) -> Any:
        """Send a request and wait for its result; notifications meanwhile are kept in `notifications`."""
        return self.request(params.method, params.to_wire())

    def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A request with untyped params (for tests that speak the wire as an outside client would)."""
        ident = next(self._ids)
        self.send(request(ident, method, params or {}))
        while True:
            message = self.receive()
            if "method" in message:
                self.notifications.append(message)
                continue
            if message.get("id") == ident:
                return result_of(message)


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
