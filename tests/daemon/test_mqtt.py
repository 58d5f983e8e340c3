"""Events from outside through a real mosquitto broker, into the real daemon and out to its clients."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from cove.daemon_client import DaemonClient
from cove.runtime import DaemonPaths, daemon_paths
from tests.conftest import require
from tests.daemon.conftest import start_daemon, wait_for_socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """A mosquitto process on a loopback port, which the test can stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        require("" if binary else "mosquitto missing", "apt-get install mosquitto (scripts/test does)")
        assert binary is not None
        self.process = subprocess.Popen([binary, "-p", str(self.port)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker(free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def bridged(tmp_path: Path, clean_env: dict[str, str], broker: Broker) -> Iterator[DaemonPaths]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = dict(
        clean_env,
        XDG_RUNTIME_DIR=str(runtime),
        XDG_DATA_HOME=str(tmp_path / "data"),
        COVE_EVENTS_MQTT_HOST="127.0.0.1",
        COVE_EVENTS_MQTT_PORT=str(broker.port),
        COVE_EVENTS_PROJECT="demo",
        COVE_EVENTS_RECONNECT_MAX_S="1",
    )
    paths = daemon_paths(env)
    process = start_daemon(env)
    wait_for_socket(paths, process)
    wait_connected(paths)
    yield paths
    process.terminate()
    assert process.wait(timeout=10) == 0


def wait_connected(paths: DaemonPaths, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    with DaemonClient(paths.socket) as client:
        while not client.request("status")["mqtt"]:
            assert time.monotonic() < deadline, "the daemon did not connect to the broker"
            time.sleep(0.05)


def publish(port: int, topic: str, payload: bytes) -> None:
    async def send() -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.publish(topic, payload, qos=1)

    asyncio.run(send())


def next_event(client: DaemonClient) -> dict[str, object]:
    message = client.receive()
    assert message["method"] == "events/notify"
    params: dict[str, object] = message["params"]
    return params


def test_outside_events_reach_subscribers_and_bad_payloads_are_dropped(bridged: DaemonPaths, broker: Broker) -> None:
    with DaemonClient(bridged.socket) as listener:
        listener.request("events/subscribe")
        publish(broker.port, "cove/demo/events/tests", b"this is not json")
        publish(broker.port, "cove/demo/events/tests", b"[1, 2]")
        publish(broker.port, "cove/demo/events/tests", json.dumps({"failed": 3, "suite": "unit"}).encode())
        assert next_event(listener) == {"topic": "tests", "payload": {"failed": 3, "suite": "unit"}}
        assert listener.request("status")["mqtt"] is True


def test_status_is_published_retained(bridged: DaemonPaths, broker: Broker) -> None:
    async def read_status() -> dict[str, object]:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("cove/demo/status")
            async for message in client.messages:
                data: dict[str, object] = json.loads(bytes(message.payload or b""))
                return data
        raise AssertionError("no status")

    status = asyncio.run(asyncio.wait_for(read_status(), timeout=10))
    assert status["state"] == "running"


def test_the_bridge_reconnects_when_the_broker_comes_back(bridged: DaemonPaths, broker: Broker) -> None:
    broker.stop()
    with DaemonClient(bridged.socket) as client:
        deadline = time.monotonic() + 10
        while client.request("status")["mqtt"]:
            assert time.monotonic() < deadline, "the daemon did not notice the broker going away"
            time.sleep(0.05)
        assert client.request("session/create", {"project": "/p"})["id"]  # still serving without a broker
    broker.start()
    wait_connected(bridged)
    with DaemonClient(bridged.socket) as listener:
        listener.request("events/subscribe")
        publish(broker.port, "cove/demo/events/ci", json.dumps({"status": "red"}).encode())
        assert next_event(listener) == {"topic": "ci", "payload": {"status": "red"}}
