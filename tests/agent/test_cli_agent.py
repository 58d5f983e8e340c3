"""`cove agent "TASK"` from the terminal: with the scripted server, and end to end with the real local model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.test_loop import repository
from tests.scripted.openai_server import completion, scripted_openai_server


def cove_agent(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cove.cli", "agent", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_agent_streams_the_transcript_with_the_scripted_server(tmp_path: Path, clean_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    script = [
        completion("Let me look.", [("read_file", '{"path": "calc.py"}')]),
        completion("", [("edit_file", '{"path": "calc.py", "old_text": "a - b", "new_text": "a + b"}')]),
        completion("Fixed add()."),
    ]
    with scripted_openai_server(script) as server:
        env = dict(clean_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        done = cove_agent(root, env, "Fix add() in calc.py", "--mode", "full-auto")
    assert done.returncode == 0, done.stderr
    assert "route execute: remote" in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "cove: Let me look."
    assert lines[1].startswith('  -> read_file({"path": "calc.py"})')
    assert lines[-1] == "cove: Fixed add()."
    assert "return a + b" in (root / "calc.py").read_text()


@pytest.mark.model
def test_agent_runs_end_to_end_with_the_real_local_model(tmp_path: Path, clean_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    before = {p.name: p.read_text() for p in root.glob("*.py")}
    # auto-read mode without a terminal: reads run, writes and commands are refused (no one to approve them).
    done = cove_agent(root, clean_env, "Fix add() in calc.py", "--mode", "auto-read", "--max-steps", "3")
    assert done.returncode in (0, 1), done.stderr
    assert "route execute: local" in done.stderr
    assert "Traceback" not in done.stderr
    calls = [line for line in done.stdout.splitlines() if line.startswith("  -> ")]
    known = ("read_file", "list_files", "search", "edit_file", "write_file", "run_command", "search_tools")
    assert all(line[5:].startswith(known) for line in calls), calls  # every call is well-formed and names a tool
    assert {p.name: p.read_text() for p in root.glob("*.py")} == before
