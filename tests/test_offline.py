"""The offline promise, proven: Cove's offline paths — `cove complete`, the language server completing, the daemon
with a local-model agent run, `cove doctor` — run in a network namespace that has only loopback, under strace, which
records every `connect` and `sendto` the processes and all their children make. Anything but a Unix socket or
loopback fails the test, whether or not the namespace would have let it through."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ARGPARSE, find_line, require

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def tracer_here() -> None:
    missing = [tool for tool in ("strace", "unshare") if shutil.which(tool) is None]
    require(" and ".join(missing) + " missing" if missing else "", "apt-get install strace util-linux")


#: A language server session as an editor without Cove's client would hold it: raw JSON-RPC over stdio.
LSP_SESSION = textwrap.dedent(
    """
    import json, subprocess, sys
    server = subprocess.Popen([sys.executable, "-m", "cove.cli", "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def send(message):
        body = json.dumps(message).encode()
        server.stdin.write(b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
        server.stdin.flush()
    def receive(ident):
        while True:
            length = 0
            while (line := server.stdout.readline().strip()):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(server.stdout.read(length))
            if message.get("id") == ident and "method" not in message:
                return message
    uri, text, line, column = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4])
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}, "rootUri": None}})
    receive(1)
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    document = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": document}})
    position = {"textDocument": {"uri": uri}, "position": {"line": line, "character": column}}
    send({"jsonrpc": "2.0", "id": 2, "method": "textDocument/completion", "params": position})
    print("lsp completion:", receive(2)["result"]["items"][0]["label"])
    send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
    receive(3)
    send({"jsonrpc": "2.0", "method": "exit"})
    server.wait(timeout=30)
    """
)

#: A local-model agent run in the daemon (the base model: only where its network goes matters here).
AGENT_RUN = textwrap.dedent(
    """
    import sys
    from cove.daemon_client import ensure_daemon
    from cove.runtime import daemon_paths
    with ensure_daemon(daemon_paths()) as client:
        client.set_timeout(None)
        session = client.request("session/create", {"project": sys.argv[1], "title": "offline"})["id"]
        run = {"session_id": session, "task": "What does notes.py do?", "read_only": True, "max_steps": 1}
        client.request("agent/run", run | {"unfit_model_ok": True})
        while True:
            message = client.receive()
            if message.get("method") == "agent/event" and message["params"]["type"] == "finished":
                print("agent run:", message["params"]["stopped"])
                break
    """
)

ALLOWED = re.compile(r'sa_family=AF_UNIX|sin_addr=inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|sa_family=AF_NETLINK')


def test_the_offline_paths_reach_nothing_but_loopback_and_unix_sockets(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.py").write_text("def total(items):\n    return sum(items)\n")
    text = ARGPARSE.read_text()
    line, column = find_line(text, "seen_non_default_actions.add(action)")
    (tmp_path / "lsp.py").write_text(LSP_SESSION)
    (tmp_path / "agent.py").write_text(AGENT_RUN)
    env = dict(clean_env, XDG_RUNTIME_DIR=str(tmp_path / "run"), COVE_AGENT_MAX_STEPS="1")
    (tmp_path / "run").mkdir(mode=0o700)
    cove = f"{sys.executable} -m cove.cli"
    script = f"""
        set -e
        ip link set lo up
        {cove} complete {ARGPARSE}:{line + 1}:{column + 26}
        {sys.executable} {tmp_path / "lsp.py"} {ARGPARSE.as_uri()} {ARGPARSE} {line} {column + 25}
        COVE_ROUTING_COMPLETE='["daemon", "local"]' {sys.executable} {tmp_path / "agent.py"} {project}
        COVE_ROUTING_COMPLETE='["daemon", "local"]' {cove} doctor
        {cove} daemon stop
    """
    done, addressed = traced(script, env, tmp_path / "connect.log")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "add(action)" in done.stdout and "lsp completion: add(action)" in done.stdout, done.stdout
    assert "agent run:" in done.stdout and "FAIL" not in done.stdout, done.stdout
    assert any("AF_UNIX" in line for line in addressed), "the daemon's socket was used: strace saw the calls"
    outside = [line for line in addressed if not ALLOWED.search(line)]
    assert not outside, "\n".join(outside[:20])


def test_the_check_sees_a_connection_beyond_loopback(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """The control: an attempt to reach another host is recorded (and refused by the namespace) — the check above
    would see one that Cove made."""
    reach = "import socket; socket.socket().connect_ex(('192.0.2.1', 80)); socket.socket().connect_ex(('127.0.0.1', 9))"
    _, addressed = traced(f'ip link set lo up; {sys.executable} -c "{reach}"', clean_env, tmp_path / "control.log")
    outside = [line for line in addressed if not ALLOWED.search(line)]
    assert len(outside) == 1 and "192.0.2.1" in outside[0], addressed


def traced(script: str, env: dict[str, str], log: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`script` run by bash in a network namespace with only loopback, under strace; its result, and the `connect`
    and `sendto` calls that named an address (of every process it started)."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    # --seccomp-bpf: only the traced calls stop the processes (the model's threads run at full speed).
    strace = ["strace", "--seccomp-bpf", "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(log)]
    done = subprocess.run(
        [*unshare, *strace, "bash", "-c", script], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    calls = [line for line in log.read_text().splitlines() if "connect(" in line or "sendto(" in line]
    return done, [line for line in calls if "sa_family=" in line]
