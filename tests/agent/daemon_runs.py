"""Helpers for agent runs through a real daemon process, driven by the scripted OpenAI-compatible server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cove.cli.agent_terminal import follow
from cove.daemon_client import DaemonClient
from cove.protocol.events import AgentEvent, event_params
from cove.runtime import daemon_paths

Decide = Callable[[dict[str, Any]], tuple[bool, str]]


@contextmanager
def agent_daemon(env: dict[str, str], tmp_path: Path, url: str = "") -> Iterator[DaemonClient]:
    """A daemon of its own (runtime folder under tmp_path) whose remote model is the scripted server at `url`."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(env, XDG_RUNTIME_DIR=str(runtime))
    if url:
        env |= {"COVE_REMOTE_BASE_URL": url, "COVE_REMOTE_MODEL": "scripted"}
    paths = daemon_paths(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "cove.cli", "daemon"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while not paths.socket.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.02)
    client = DaemonClient(paths.socket, timeout=300, name="test")
    try:
        yield client
    finally:
        client.close()
        process.terminate()
        assert process.wait(timeout=20) == 0, process.stderr.read() if process.stderr else ""


def run_session(
    client: DaemonClient, project: Path, task: str, decide: Decide, session_id: str = "", **params: Any
) -> tuple[str, list[dict[str, Any]]]:
    """Run `task` in a session (a new one unless given) and collect its events until it finishes."""
    if not session_id:
        session_id = client.request("session/create", {"project": str(project), "title": task})["id"]
    client.request("agent/run", {"session_id": session_id, "task": task, **params})
    events: list[dict[str, Any]] = []

    def wire(event: AgentEvent) -> dict[str, Any]:  # the tests read events in their wire form, as any client can
        return event_params(session_id, event)

    follow(client, session_id, lambda event: decide(wire(event)), lambda event: events.append(wire(event)))
    return session_id, events


def approve_all(event: dict[str, Any]) -> tuple[bool, str]:
    return True, ""


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]
