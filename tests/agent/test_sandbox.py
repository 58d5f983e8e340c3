"""The agent's commands in the real bubblewrap sandbox, with real processes: the escapes found from outside all fail,
each `[sandbox]` setting shows its effect, and a missing sandbox is never a silent downgrade."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.agent.command_tool import run_command
from cove.agent.file_tools import ToolError
from cove.agent.mcp_tools import McpTools
from cove.agent.safety import Workspace
from cove.agent.sandbox import Sandbox, pids_cgroup, unavailable
from cove.config import McpConfig, SandboxConfig
from tests.conftest import require


@pytest.fixture(autouse=True)
def sandbox_here() -> None:
    require(unavailable(), "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces")


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with secrets and notes, a workspace in it, a secret beside the workspace, Cove's folders."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / ".netrc").write_text("machine example.com password hunter2")
    (home / "notes.txt").write_text("my notes")
    (home / "outside").mkdir()
    (home / "outside" / "secret.txt").write_text("SECRET")
    workspace = home / "project"
    workspace.mkdir()
    (workspace / "link").symlink_to(home / "outside")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return workspace


def run(workspace: Path, command: str, timeout_s: float = 60, **settings: object) -> str:
    sandbox = Sandbox.for_workspace(SandboxConfig(**settings), workspace)  # type: ignore[arg-type]
    return run_command(Workspace.at(workspace), command, timeout_s=timeout_s, sandbox=sandbox)


def status(output: str) -> int:
    return int(output.split()[2])


def test_reads_outside_the_workspace_fail_however_they_are_spelled(layout: Path) -> None:
    for command in (
        "cat ../outside/secret.txt",
        "cat $(pwd)/link/secret.txt",
        f"cat {layout.parent}/outside/secret.txt",
        f"cat /proc/{os.getpid()}/root{layout.parent}/outside/secret.txt",  # through a host process's root
        "cat ~/.ssh/id_ed25519",
        "cat /etc/shadow",
    ):
        output = run(layout, command)
        assert status(output) != 0 and "SECRET" not in output and "PRIVATE" not in output, (command, output)
    assert "sandboxed: no network, only the workspace writable, home hidden" in run(layout, "true")


def test_writes_land_in_the_workspace_only(layout: Path) -> None:
    output = run(layout, "echo made > here.txt; echo leaked > ../leaked.txt; echo leaked > /tmp/leaked.txt; ls")
    assert status(output) == 0 and (layout / "here.txt").read_text() == "made\n"
    assert not (layout.parent / "leaked.txt").exists() and not Path("/tmp/leaked.txt").exists()


def test_the_daemons_socket_is_out_of_reach(layout: Path, tmp_path: Path) -> None:
    runtime = tmp_path / "run" / "cove"
    runtime.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as daemon:
        daemon.bind(str(runtime / "daemon.sock"))
        daemon.listen()
        connect = f"import socket; socket.socket(socket.AF_UNIX).connect({str(runtime / 'daemon.sock')!r})"
        for settings in ({}, {"write": [str(tmp_path)]}):  # hidden even inside a folder made writable
            output = run(layout, f"{sys.executable} -c {connect!r}", **settings)  # type: ignore[arg-type]
            assert status(output) != 0 and "FileNotFoundError" in output, output


@contextlib.contextmanager
def loopback_server() -> Iterator[int]:
    """A TCP server on the host's loopback that answers "hello" to each connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = server.accept()
                connection.sendall(b"hello")
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def test_the_network_setting_none_loopback_full(layout: Path) -> None:
    with loopback_server() as port:
        fetch = f"import socket; print(socket.create_connection(('127.0.0.1', {port})).recv(5))"
        command = f"{sys.executable} -c {fetch!r}"
        none = run(layout, command)
        assert status(none) != 0 and "PermissionError" in none, none  # no socket but Unix ones at all
        own = run(layout, command, network="loopback")
        assert status(own) != 0 and "ConnectionRefusedError" in own, own  # a loopback of its own: nobody listens
        serve_inside = "import socket; s = socket.create_server(('127.0.0.1', 0)); print('listening')"
        assert "listening" in run(layout, f"{sys.executable} -c {serve_inside!r}", network="loopback")
        full = run(layout, command, network="full")
        assert status(full) == 0 and "b'hello'" in full, full


def test_read_and_write_add_paths_but_secrets_stay_hidden(layout: Path) -> None:
    home = layout.parent
    assert "my notes" not in run(layout, "cat ~/notes.txt")
    readable = run(layout, "cat ~/notes.txt; cat ~/.ssh/id_ed25519; cat ~/.netrc; echo x > ~/new.txt", read=["~"])
    assert "my notes" in readable and "PRIVATE" not in readable and "hunter2" not in readable, readable
    assert not (home / "new.txt").exists()  # read-only
    writable = run(layout, "echo x > ~/outside/new.txt && echo written", write=[str(home / "outside")])
    assert "written" in writable and (home / "outside" / "new.txt").read_text() == "x\n"


def test_the_environment_is_cut_to_an_allow_list(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("LANG", "C.UTF-8")
    scrubbed = run(layout, "env")
    assert "ghp_secret" not in scrubbed and "aws_secret" not in scrubbed and "SSH_AUTH_SOCK" not in scrubbed
    assert "LANG=C.UTF-8" in scrubbed and f"HOME={layout.parent}" in scrubbed
    assert "GITHUB_TOKEN=ghp_secret" in run(layout, "env", env=["GITHUB_TOKEN"])


def test_limits_from_the_settings_apply(layout: Path) -> None:
    limits = run(layout, "cat /proc/self/limits", cpu_s=7, memory_mb=512, processes=99, file_size_mb=1)
    assert all(
        line.split()[-3:-1] in (["7", "7"], ["536870912", "536870912"], ["99", "99"], ["1048576", "1048576"])
        for line in limits.splitlines()
        if line.startswith(("Max cpu time", "Max address space", "Max processes", "Max file size"))
    ), limits
    assert status(run(layout, "head -c 2000000 /dev/zero > big.bin", file_size_mb=1)) != 0
    assert (layout / "big.bin").stat().st_size <= 1 << 20
    hog = f"{sys.executable} -c 'x = bytearray(400 << 20)'"
    assert status(run(layout, hog, memory_mb=256)) != 0 and status(run(layout, hog)) == 0
    assert status(run(layout, "while :; do :; done", cpu_s=1)) != 0  # SIGXCPU, long before the timeout


def living(marker: str) -> list[int]:
    """Host processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def test_a_timeout_ends_every_descendant_and_a_fork_bomb_is_contained(layout: Path) -> None:
    with pytest.raises(ToolError, match="timed out"):
        run(layout, "(setsid sleep 313 &); (nohup sleep 313 &); sleep 313", timeout_s=1)
    deadline = time.monotonic() + 5
    while living("sleep 313") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not living("sleep 313"), "a grandchild outlived the sandbox"
    # A process left in the background ends with the command (the PID namespace goes with its first process).
    assert status(run(layout, "sleep 314 &")) == 0 and not living("sleep 314")
    if os.geteuid() == 0:  # root is exempt from RLIMIT_NPROC: only a pids cgroup holds a fork bomb
        require(
            "" if pids_cgroup(64) is not None else "no pids cgroup can be made here",
            "mount the cgroup v1 pids controller or give the session a writable cgroup v2 subtree",
        )
    # Not the pattern the policy refuses: only the sandbox stands in its way (at most 64 processes at a time).
    with pytest.raises(ToolError, match="timed out"):
        run(layout, "bomb() { bomb | bomb & }; bomb; sleep 60", timeout_s=2, processes=64)
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still start processes
    deadline = time.monotonic() + 5
    while living("bomb") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not living("bomb() {"), "the fork bomb outlived the sandbox"


def test_pytest_runs_in_the_workspace_inside_the_sandbox(layout: Path) -> None:
    (layout / "test_calc.py").write_text("def test_add():\n    assert 1 + 1 == 2\n")
    output = run(layout, f"{sys.executable} -m pytest -q -p no:cacheprovider")
    assert status(output) == 0 and "1 passed" in output, output


def test_a_missing_bubblewrap_is_said_and_never_a_silent_downgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    unavailable.cache_clear()
    try:
        assert "bubblewrap is not installed" in unavailable()
    finally:
        monkeypatch.undo()
        unavailable.cache_clear()
    assert unavailable() == ""


def test_mcp_servers_run_in_the_sandbox_when_asked(layout: Path) -> None:
    """`[sandbox] mcp = true` hands the run's sandbox to McpTools (agent/runner.py); the server then runs inside."""
    server = layout / "tickets_server.py"  # inside the workspace: the rest of the home folder is hidden
    server.write_bytes((Path(__file__).parent.parent / "data" / "mcp_tickets_server.py").read_bytes())
    config = McpConfig(servers=(f"tickets = {sys.executable} {server}",))
    names = []
    for sandbox in (Sandbox.for_workspace(SandboxConfig(), layout), None):
        mcp = McpTools(config, layout, sandbox).start()
        try:
            assert not mcp.failures, mcp.failures
            names.append(mcp.call("mcp__tickets__machine", {}))
        finally:
            mcp.close()
    assert names == ["cove-sandbox", socket.gethostname()]
