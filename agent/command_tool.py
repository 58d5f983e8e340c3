"""The agent's run_command tool: a shell command inside the workspace (in the sandbox: agent/sandbox.py), bounded in
time and output."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cove.agent.file_tools import ToolError
from cove.agent.safety import ToolDenied, Workspace, denied_command
from cove.agent.sandbox import Sandbox

MAX_OUTPUT_CHARS = 20_000


def _never() -> bool:
    return False


def _ignore(text: str) -> None:
    pass


@dataclass(frozen=True)
class CommandWatch:
    """Who watches a running command: its output as it comes (`on_output`, from another thread), and whether to kill
    it now (`cancelled`: the run was cancelled)."""

    cancelled: Callable[[], bool] = _never
    on_output: Callable[[str], None] = _ignore


def run_command(
    workspace: Workspace,
    command: str,
    cwd: str = ".",
    timeout_s: float = 120,
    max_output: int = MAX_OUTPUT_CHARS,
    sandbox: Sandbox | None = None,
    watch: CommandWatch = CommandWatch(),
) -> str:
    """Run `command` with bash in `cwd` (inside the workspace), in `sandbox` (None: unconfined, as the user);
    returns its exit status, what confined it, and its output (head and tail).

    Refused in every mode when it matches a deny pattern. On timeout, or as soon as `watch` says the run was
    cancelled, the whole process group is killed (in the sandbox, its PID namespace goes with it: every descendant).
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
    chunks: list[bytes] = []
    reader = threading.Thread(target=_pump, args=(process, chunks, watch.on_output), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    stopped = ""
    while process.poll() is None and not stopped:
        if watch.cancelled():
            stopped = f"the run was cancelled: the command was killed: {command!r}"
        elif time.monotonic() > deadline:
            stopped = f"command timed out after {timeout_s:g} s and was killed: {command!r}"
        else:
            time.sleep(0.05)
    if stopped:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    reader.join()
    if stopped:
        raise ToolError(stopped)
    raw = b"".join(chunks)
    output = raw.decode("utf-8", errors="replace")
    if len(output) > max_output:
        half = max_output // 2
        skipped = len(output) - 2 * half
        output = f"{output[:half]}\n[... {skipped} characters cut ...]\n{output[-half:]}"
    confined = sandbox.describe() if sandbox is not None else "not sandboxed"
    return f"exit status {process.returncode} ({confined})\n{output}"


def _pump(process: subprocess.Popen[bytes], chunks: list[bytes], on_output: Callable[[str], None]) -> None:
    """Read the command's output as it comes (what the pipe holds at each read) and hand each piece on."""
    assert process.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    descriptor = process.stdout.fileno()
    for chunk in iter(lambda: os.read(descriptor, 65536), b""):
        chunks.append(chunk)
        if text := decoder.decode(chunk):
            on_output(text)
    if text := decoder.decode(b"", final=True):
        on_output(text)
