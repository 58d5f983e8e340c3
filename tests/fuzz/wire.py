"""A client that sends raw frames, as no well-behaved library would, and keeps every message it gets back.

Used against the real `cove lsp` (over its stdio) and the real daemon (over its Unix socket): the fuzz tests check
that every request gets exactly one reply, that nothing is shown to the user for a protocol error, and that the
process lives.
"""

from __future__ import annotations

import itertools
import json
import queue
import socket
import subprocess
import threading
import time
from collections import Counter
from typing import IO, Any

_ids = itertools.count(1_000_000)


def frame(body: bytes | dict[str, Any] | list[Any]) -> bytes:
    """One Content-Length frame around `body` (a message is JSON-encoded first)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def next_id() -> int:
    return next(_ids)


class WireClient:
    """Frames out on `write`, messages in from `read` (a reader thread parses them onto a queue)."""

    def __init__(self, read: IO[bytes], write: IO[bytes] | socket.socket) -> None:
        self._write = write
        self.received: list[dict[str, Any]] = []
        self._inbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(read,), daemon=True).start()

    def send_raw(self, data: bytes) -> None:
        with self._lock:
            if isinstance(self._write, socket.socket):
                self._write.sendall(data)
            else:
                self._write.write(data)
                self._write.flush()

    def send(self, message: dict[str, Any] | list[Any] | bytes) -> None:
        self.send_raw(frame(message))

    def request(self, method: str, params: Any) -> int:
        ident = next_id()
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        return ident

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_reply(self, ident: int | str, timeout: float = 60.0) -> dict[str, Any]:
        """The reply to `ident`; answers the server's own requests (progress tokens, dialogs) on the way."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                if message.get("id") == ident and "method" not in message:
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to request {ident} in {timeout} s")
            try:
                incoming = self._inbox.get(timeout=left)
            except queue.Empty:
                continue
            if incoming is None:
                raise AssertionError(f"the connection closed before the reply to {ident}")
            if "method" in incoming and "id" in incoming:  # a request from the server: answer it plainly
                self.send({"jsonrpc": "2.0", "id": incoming["id"], "result": None})

    def call(self, method: str, params: Any, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_reply(self.request(method, params), timeout)

    def replies(self) -> Counter[Any]:
        """How many replies each id got (None: replies with id null)."""
        return Counter(m.get("id") for m in self.received if "method" not in m)

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("method") == method]

    def _read(self, stream: IO[bytes]) -> None:
        try:
            while True:
                length = None
                while True:
                    line = stream.readline()
                    if not line:
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                assert length is not None, "a frame without Content-Length"
                message = json.loads(stream.read(length))
                self.received.append(message)
                self._inbox.put(message)
        except (OSError, ValueError):
            return
        finally:
            self._inbox.put(None)


def lsp_process(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], WireClient]:
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdin is not None and process.stdout is not None
    return process, WireClient(process.stdout, process.stdin)


def socket_client(path: str) -> tuple[socket.socket, WireClient]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock, WireClient(sock.makefile("rb"), sock)
