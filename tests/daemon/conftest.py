"""Fixtures of the daemon tests: a real `cove daemon` process in a runtime folder of its own."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime import DaemonPaths, daemon_paths


def start_daemon(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cove.cli", "daemon", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for_socket(paths: DaemonPaths, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not paths.socket.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.02)


@pytest.fixture
def env(tmp_path: Path, clean_env: dict[str, str]) -> dict[str, str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    return dict(clean_env, XDG_RUNTIME_DIR=str(runtime), XDG_DATA_HOME=str(tmp_path / "data"))


@pytest.fixture
def daemon(env: dict[str, str]) -> Iterator[DaemonPaths]:
    paths = daemon_paths(env)
    process = start_daemon(env)
    wait_for_socket(paths, process)
    yield paths
    process.terminate()
    assert process.wait(timeout=10) == 0
