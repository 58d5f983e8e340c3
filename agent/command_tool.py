"""The agent's run_command tool: a shell command inside the workspace (in the sandbox: agent/sandbox.py), bounded in
time and output."""

from __future__ import annotations

import os
import signal
import subprocess

from cove.agent.file_tools import ToolError
from cove.agent.safety import ToolDenied, Workspace, denied_command
from cove.agent.sandbox import Sandbox

MAX_OUTPUT_CHARS = 20_000


def run_command(
    workspace: Workspace,
    command: str,
    cwd: str = ".",
    timeout_s: float = 120,
    max_output: int = MAX_OUTPUT_CHARS,
    sandbox: Sandbox | None = None,
) -> str:
    """Run `command` with bash in `cwd` (inside the workspace), in `sandbox` (None: unconfined, as the user);
    returns its exit status, what confined it, and its output (head and tail).

    Refused in every mode when it matches a deny pattern. On timeout the whole process group is killed (in the
    sandbox, its PID namespace goes with it: every descendant).
    """
    reason = denied_command(command)
    if reason is not None:
        raise ToolDenied(f"refused: {reason} ({command!r}); no approval mode allows it")
    folder = workspace.resolve(cwd)
    if not folder.is_dir():
        raise ToolError(f"cwd {cwd} is not a folder in the workspace")
    argv = ["bash", "-c", command]
    env = None
    if sandbox is not None:
        argv, env = sandbox.command(argv, folder), sandbox.environment(os.environ)
    process = subprocess.Popen(
        argv,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        raw, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ToolError(f"command timed out after {timeout_s:g} s and was killed: {command!r}") from None
    output = raw.decode("utf-8", errors="replace")
    if len(output) > max_output:
        half = max_output // 2
        skipped = len(output) - 2 * half
        output = f"{output[:half]}\n[... {skipped} characters cut ...]\n{output[-half:]}"
    confined = sandbox.describe() if sandbox is not None else "not sandboxed"
    return f"exit status {process.returncode} ({confined})\n{output}"
