"""index/* on the real daemon over its socket: a background build with progress, search and definitions, saves
and the file watcher, bad params answered, and the index kept across a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cove.daemon_client import DaemonClient
from cove.errors import DaemonError
from cove.runtime import daemon_paths
from tests.daemon.conftest import start_daemon, wait_for_socket


def built(client: DaemonClient, root: Path, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.request("index/status", {"root": str(root)})
        if not status["building"]:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def eventually(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.05)


def test_index_build_search_watch_and_restart(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / ".gitignore").write_text("build/\n")
    (root / "src" / "cache.py").write_text("def warm_cache(size: int) -> None:\n    pass\n")
    (root / "src" / "lib.rs").write_text("pub fn parse_frame(bytes: &[u8]) -> usize {\n    bytes.len()\n}\n")
    paths = daemon_paths(env)
    process = start_daemon(env)
    wait_for_socket(paths, process)
    with DaemonClient(paths.socket) as client:
        opened = client.request("index/open", {"root": str(root)})
        assert {"building", "done", "total", "files", "chunks"} <= set(opened)
        status = built(client, root)
        assert (status["files"], status["chunks"], status["error"]) == (2, 2, "") and status["total"] == 2
        [hit] = client.request("index/search", {"root": str(root), "query": "parse_frame(data)"})
        assert (hit["path"], hit["name"], hit["start_line"]) == ("src/lib.rs", "parse_frame", 1)
        [found] = client.request("index/definitions", {"root": str(root), "names": ["warm_cache"]})
        assert found["text"].startswith("def warm_cache(size: int) -> None:")
        (root / "build").mkdir()
        (root / "build" / "gen.py").write_text("def generated_thing():\n    pass\n")  # ignored: never indexed
        (root / "src" / "jobs.go").write_text("package jobs\n\nfunc ScheduleJob() {}\n")  # the watcher sees it
        eventually(lambda: client.request("index/definitions", {"root": str(root), "names": ["ScheduleJob"]}))
        assert client.request("index/definitions", {"root": str(root), "names": ["generated_thing"]}) == []
        (root / "src" / "cache.py").write_text("def cool_cache() -> None:\n    pass\n")
        assert client.request("index/update", {"root": str(root), "paths": ["src/cache.py"]}) == {"indexed": 1}
        assert client.request("index/definitions", {"root": str(root), "names": ["cool_cache"]})
        for bad in ({"root": "relative/path"}, {"root": str(root / "absent")}, {"root": 3}, {"root": "/"}):
            with pytest.raises(DaemonError, match="root"):
                client.request("index/status", bad)
        with pytest.raises(DaemonError, match="names"):
            client.request("index/definitions", {"root": str(root), "names": "warm_cache"})
        assert client.request("status")["pid"]  # still serving
    process.terminate()
    assert process.wait(timeout=10) == 0
    process = start_daemon(env)  # a restart: the index is there, nothing needs reading again
    wait_for_socket(paths, process)
    try:
        with DaemonClient(paths.socket) as client:
            status = built(client, root)
            assert status["files"] == 3 and status["built"] > 0
            assert client.request("index/definitions", {"root": str(root), "names": ["ScheduleJob"]})
    finally:
        process.terminate()
        process.wait(timeout=10)
