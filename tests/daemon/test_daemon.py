"""The real daemon process over its real Unix socket."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import stat
import threading
import time

import pytest

from cove.agent.store import MIGRATIONS
from cove.daemon_client import DaemonClient
from cove.errors import DaemonError, DaemonUnavailable
from cove.runtime import DaemonPaths, daemon_paths
from tests.daemon.conftest import start_daemon, wait_for_socket


def raw(paths: DaemonPaths) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(paths.socket))
    return sock


def read_reply(sock: socket.socket) -> dict[str, object]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.split(b":")[1])
    while len(body) < length:
        body += sock.recv(4096)
    reply: dict[str, object] = json.loads(body[:length])
    return reply


def frame(message: object) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_handshake_status_and_permissions(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        assert client.server["protocol_version"] == 1
        status = client.request("status")
        assert status["schema_version"] == len(MIGRATIONS) and status["clients"] == 1
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.runtime.stat().st_mode) == 0o700


def test_requests_need_the_handshake_and_a_known_version(daemon: DaemonPaths) -> None:
    sock = raw(daemon)
    sock.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "status"}))
    assert read_reply(sock)["error"] == {"code": -32002, "message": "send initialize first"}
    sock.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocol_version": 99}}))
    error = read_reply(sock)["error"]
    assert isinstance(error, dict) and "protocol version 99 is not supported" in error["message"]


def test_sessions_and_transcripts(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        session = client.request("session/create", {"project": "/repo", "title": "fix parser"})
        sent = client.request("session/send", {"session_id": session["id"], "text": "the parser drops comments"})
        assert client.notifications[-1]["params"] == {
            "session_id": session["id"],
            "type": "message",
            "id": sent["message_id"],
        }
        assert [s["id"] for s in client.request("session/list", {"project": "/repo"})] == [session["id"]]
        resumed = client.request("session/resume", {"session_id": session["id"]})
        assert [m["content"] for m in resumed["transcript"]] == ["the parser drops comments"]
        client.request("session/close", {"session_id": session["id"]})
        assert client.request("session/list", {"project": "/repo"}) == []
        with pytest.raises(DaemonError, match="no session"):
            client.request("session/resume", {"session_id": "nope"})
        with pytest.raises(DaemonError, match=r"required field missing @ \$\.project"):
            client.request("session/create", {})
        with pytest.raises(DaemonError, match="unknown method"):
            client.request("session/fly")


def test_memory_is_searchable_and_secrets_never_reach_the_disk(daemon: DaemonPaths) -> None:
    planted = ["ghp_abcdefghijklmnopqrstuvwxyz0123456789", "hunter2hunter2", "AKIAABCDEFGHIJKLMNOP"]
    with DaemonClient(daemon.socket) as client:
        client.request("memory/write", {"project": "/repo", "text": "Run the tests with make check"})
        client.request(
            "memory/write", {"project": "/repo", "text": f"deploy token={planted[0]} password: {planted[1]}"}
        )
        session = client.request("session/create", {"project": "/repo"})
        client.request("session/send", {"session_id": session["id"], "text": f"my key is {planted[2]}"})
        found = client.request("memory/search", {"project": "/repo", "query": "how to run tests"})
        assert found[0]["text"] == "Run the tests with make check"
        with pytest.raises(DaemonError, match="scope must be"):
            client.request("memory/write", {"project": "/repo", "text": "x", "scope": "galaxy"})
    data = b"".join(p.read_bytes() for p in daemon.data.glob("memory.db*"))
    for secret in planted:
        assert secret.encode() not in data


def test_garbage_truncated_and_oversized_frames_get_errors_and_the_daemon_lives(daemon: DaemonPaths) -> None:
    sock = raw(daemon)
    sock.sendall(b"Content-Length: 9\r\n\r\nnot json!")
    assert read_reply(sock)["error"]["code"] == -32700  # type: ignore[index]
    sock.sendall(frame([1, 2, 3]))
    assert read_reply(sock)["error"]["code"] == -32600  # type: ignore[index]
    sock.sendall(frame({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"protocol_version": 1}}))
    assert "result" in read_reply(sock)
    huge = raw(daemon)
    huge.sendall(b"Content-Length: 104857600\r\n\r\n" + b"x" * 1000)
    assert "larger than the limit" in read_reply(huge)["error"]["message"]  # type: ignore[index]
    assert huge.recv(10) == b""  # and the connection is closed, not read to the end
    noise = raw(daemon)
    noise.sendall(os.urandom(3000) + b"\r\n\r\n")
    assert read_reply(noise)["error"]["code"] == -32600  # type: ignore[index]
    truncated = raw(daemon)
    truncated.sendall(b'Content-Length: 500\r\n\r\n{"jsonrpc":')
    truncated.close()
    with DaemonClient(daemon.socket) as client:
        assert client.request("status")["pid"] > 0


def test_a_stuck_client_does_not_block_others(daemon: DaemonPaths) -> None:
    stuck = raw(daemon)
    stuck.sendall(b"Content-Length: 50\r\n\r\n{")  # never finishes its frame
    silent = DaemonClient(daemon.socket)
    silent.request("events/subscribe")  # subscribes, then never reads
    with DaemonClient(daemon.socket) as client:
        for _ in range(200):
            client.request("events/publish", {"topic": "ci", "payload": {"text": "x" * 2000}})
        assert client.request("status")["clients"] == 3
    stuck.close()
    silent.close()


def test_many_clients_at_once(daemon: DaemonPaths) -> None:
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            with DaemonClient(daemon.socket) as client:
                for step in range(10):
                    client.request("memory/write", {"project": "/p", "text": f"client {number} note {step}"})
                    client.request("status")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with DaemonClient(daemon.socket) as client:
        assert len(client.request("memory/search", {"project": "/p", "query": "note", "limit": 1000})) == 400


def test_published_events_reach_subscribers(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as listener, DaemonClient(daemon.socket) as publisher:
        listener.request("events/subscribe")
        assert publisher.request("events/publish", {"topic": "tests", "payload": {"failed": 2}}) == {"delivered": 1}
        message = listener.receive()
        assert message["method"] == "events/notify" and message["params"]["payload"] == {"failed": 2}


def test_one_daemon_per_user(daemon: DaemonPaths, env: dict[str, str]) -> None:
    second = start_daemon(env)
    assert second.wait(timeout=15) == 1
    assert b"already running" in (second.stderr.read() if second.stderr else b"")


def test_sigterm_and_idle_timeout_stop_it_cleanly(env: dict[str, str]) -> None:
    paths = daemon_paths(env)
    process = start_daemon(env)
    wait_for_socket(paths, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert not paths.socket.exists()
    idle = start_daemon(env, "--idle-timeout", "0.5")
    wait_for_socket(paths, idle)
    assert idle.wait(timeout=15) == 0


def test_kill_9_during_writes_loses_no_acknowledged_write(env: dict[str, str]) -> None:
    paths = daemon_paths(env)
    acknowledged: list[str] = []
    died: list[str] = []  # how each writer ended when the daemon was killed under it
    unexpected: list[BaseException] = []
    rng = random.Random(7)
    for round_ in range(50):
        process = start_daemon(env)
        wait_for_socket(paths, process)
        stop = threading.Event()

        def write(round_: int = round_, stop: threading.Event = stop) -> None:
            try:
                with DaemonClient(paths.socket, timeout=5) as client:
                    for step in range(10_000):
                        text = f"round {round_} write {step}"
                        client.request("memory/write", {"project": "/p", "text": text})
                        acknowledged.append(text)
                        if stop.is_set():
                            return
            except (OSError, DaemonUnavailable) as err:  # the daemon died under us: expected, and counted
                died.append(type(err).__name__)
            except Exception as err:  # anything else is a failure of the test's claim
                unexpected.append(err)

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(rng.uniform(0.05, 0.2))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        writer.join(timeout=10)
        paths.socket.unlink(missing_ok=True)
    database = sqlite3.connect(paths.database)
    assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in database.execute("SELECT text FROM notes")}
    assert len(acknowledged) > 50
    assert not unexpected, unexpected
    assert len(died) >= 45, f"most writers must have been cut off mid-write by the kill: {died}"
    missing = [text for text in acknowledged if text not in stored]
    assert missing == []


def connect_when_listening(port: int) -> socket.socket:
    """A connection to the daemon's TCP listener, which may open a moment after its Unix socket."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}"
            time.sleep(0.05)


def test_tcp_listener_refuses_clients_without_the_token(env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unguarded = start_daemon(dict(env, COVE_DAEMON_TCP_LISTEN=f"127.0.0.1:{port}"))
    assert unguarded.wait(timeout=15) == 78
    assert b"daemon.token is empty" in (unguarded.stderr.read() if unguarded.stderr else b"")
    paths = daemon_paths(env)
    process = start_daemon(dict(env, COVE_DAEMON_TCP_LISTEN=f"127.0.0.1:{port}", COVE_DAEMON_TOKEN="s3cret-token"))
    wait_for_socket(paths, process)
    try:
        for token in (None, "wrong"):
            remote = connect_when_listening(port)
            params: dict[str, object] = {"protocol_version": 1}
            if token:
                params["token"] = token
            remote.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}))
            assert read_reply(remote)["error"]["code"] == -32001  # type: ignore[index]
            assert remote.recv(10) == b""  # refused and closed
        remote = socket.create_connection(("127.0.0.1", port), timeout=10)
        hello = {"protocol_version": 1, "token": "s3cret-token"}
        remote.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}))
        assert "result" in read_reply(remote)
        remote.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "status"}))
        assert read_reply(remote)["result"]["pid"] == process.pid  # type: ignore[index]
        with DaemonClient(paths.socket) as local:  # the owner's Unix socket needs no token
            assert local.request("status")["pid"] == process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
