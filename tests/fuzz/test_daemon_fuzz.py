"""The real daemon fed random and mutated frames over its real socket: every request gets exactly one reply (a broken
frame that ends the connection gets its error first), and the daemon lives and serves the next client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cove.runtime import DaemonPaths, daemon_paths
from tests.fuzz.wire import WireClient, frame, next_id, socket_client

METHODS = [
    "initialize",
    "status",
    "session/create",
    "session/list",
    "session/resume",
    "session/close",
    "session/send",
    "session/event",
    "memory/write",
    "memory/search",
    "memory/propose",
    "memory/proposals",
    "memory/decide",
    "events/publish",
    "events/subscribe",
    "agent/decide",
    "agent/cancel",
    "agent/undo",
    "agent/run",
    "complete/generate",
    "complete/warm",
    "complete/cancel",
    "complete/forget",
    "complete/load",
    "checkpoint/list",
    "checkpoint/restore",
    "index/open",
    "index/status",
    "index/search",
    "index/definitions",
    "index/update",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


class Daemon:
    def __init__(self, process: subprocess.Popen[bytes], paths: DaemonPaths, project: Path) -> None:
        self.process, self.paths, self.project = process, paths, project

    def connect(self) -> tuple[socket.socket, WireClient]:
        sock, client = socket_client(str(self.paths.socket))
        reply = client.call("initialize", {"protocol_version": 1, "client": "fuzz"}, timeout=10)
        assert "result" in reply, reply
        return sock, client


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("daemon-fuzz")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
    env |= {f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "STATE", "DATA")}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    paths = daemon_paths(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "cove.cli", "daemon"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while not paths.socket.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.02)
    project = home / "project"
    project.mkdir()
    yield Daemon(process, paths, project)
    process.terminate()
    assert process.wait(timeout=20) == 0


def params_for(daemon: Daemon) -> st.SearchStrategy[Any]:
    """Params objects with plausible keys and any values, a plausible object with a key missing, or any JSON."""
    keys = ["session_id", "project", "title", "text", "type", "data", "query", "limit", "scope", "kind", "topic"]
    keys += ["payload", "proposal_id", "accept", "request_id", "approve", "include_closed", "protocol_version"]
    keys += ["job", "document"]
    values = json_values | st.just(str(daemon.project)) | st.just("no-such-session")
    objects = st.dictionaries(st.sampled_from(keys), values, max_size=5)
    return objects | json_values


@st.composite
def messages(draw: st.DrawFn, daemon: Daemon) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["request", "request", "request", "notify", "raw"]))
    method = draw(st.sampled_from(METHODS) | st.text(max_size=16).filter(lambda m: m != "shutdown"))
    if kind == "request":
        params = draw(params_for(daemon))
        if method == "agent/run":  # never a real run: its task is not a string
            params = {"session_id": "no-such-session", "task": draw(st.integers() | st.none())}
        return kind, (method, params)
    if kind == "notify":
        return kind, (method, draw(params_for(daemon)))
    garbage = [b"{", b"\xff\xfe", b"[]", b"42", b"null", b'{"jsonrpc": "2.0"}', b'{"jsonrpc": "2.0", "id": 1.5}']
    return kind, draw(st.sampled_from(garbage) | st.binary(max_size=30))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_request_gets_exactly_one_reply(daemon: Daemon, data: st.DataObject) -> None:
    sock, client = daemon.connect()
    try:
        expected: list[int] = []
        for kind, payload in data.draw(st.lists(messages(daemon), min_size=1, max_size=6)):
            if kind == "request":
                method, params = payload
                ident = next_id()
                expected.append(ident)
                client.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
            elif kind == "notify":
                client.send({"jsonrpc": "2.0", "method": payload[0], "params": payload[1]})
            else:
                client.send(payload)
        for ident in expected:
            reply = client.wait_reply(ident, timeout=30)
            assert ("result" in reply) != ("error" in reply), reply
            if "error" in reply:
                assert "Traceback" not in reply["error"]["message"], reply
        counts = client.replies()
        assert all(counts[ident] == 1 for ident in expected), counts
    finally:
        sock.close()
    assert daemon.process.poll() is None, "the daemon died"


@pytest.mark.parametrize(
    "head",
    [b"Content-Length: 99999999999\r\n\r\n", b"Content-Length: abc\r\n\r\n", b"X-Nothing: 1\r\n\r\n", b"A" * 5000],
    ids=["huge", "not-a-number", "no-length", "header-too-long"],
)
def test_a_broken_frame_gets_an_error_then_the_connection_closes(daemon: Daemon, head: bytes) -> None:
    sock, client = daemon.connect()
    try:
        client.send_raw(head + (b"" if head.startswith(b"A") else b"{}"))
        deadline = time.monotonic() + 10
        while not any(m.get("id") is None and "error" in m for m in client.received):
            assert time.monotonic() < deadline, client.received
            time.sleep(0.02)
        assert sock.recv(1) == b"", "the connection should be closed after a frame the daemon cannot skip"
    finally:
        sock.close()
    # The daemon serves the next client.
    sock, client = daemon.connect()
    try:
        assert "result" in client.call("status", {})
    finally:
        sock.close()


def test_typed_params_errors_name_the_field(daemon: Daemon) -> None:
    sock, client = daemon.connect()
    try:
        reply = client.call("session/create", {"project": 42})
        assert reply["error"]["code"] == -32602
        assert "session/create" in reply["error"]["message"] and "$.project" in reply["error"]["message"]
        reply = client.call("memory/search", {"project": "p", "query": "q", "limit": True})
        assert reply["error"]["code"] == -32602 and "$.limit" in reply["error"]["message"], reply
        reply = client.call("session/list", {"project": "p", "extra": 1})
        assert reply["error"]["code"] == -32602 and "extra" in reply["error"]["message"], reply
    finally:
        sock.close()


def test_frames_split_anywhere_are_read_whole(daemon: Daemon) -> None:
    sock, client = daemon.connect()
    try:
        ident = next_id()
        data = frame({"jsonrpc": "2.0", "id": ident, "method": "status", "params": {}}) * 1
        for i in range(len(data)):  # one byte at a time
            client.send_raw(data[i : i + 1])
        assert "result" in client.wait_reply(ident, timeout=10)
    finally:
        sock.close()
