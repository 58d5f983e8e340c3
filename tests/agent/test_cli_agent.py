"""`cove agent "TASK"` from the terminal (through the daemon it starts), and a session with the real local model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cove.agent.tool_registry import load_specs
from tests.agent.daemon_runs import agent_daemon, of_type, run_session
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


def test_agent_streams_the_transcript_with_the_scripted_server(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    script = [
        completion("1. Fix the operator in add()"),  # the plan, approved automatically in full-auto mode
        completion("Let me look.", [("read_file", '{"path": "calc.py"}')]),
        completion("", [("edit_file", '{"path": "calc.py", "old_text": "a - b", "new_text": "a + b"}')]),
        completion("", [("todo_write", '{"items": [{"text": "Fix the operator in add()", "status": "done"}]}')]),
        completion("Fixed add()."),
    ]
    with scripted_openai_server(script) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        done = cove_agent(root, env, "Fix add() in calc.py", "--mode", "full-auto")
    assert done.returncode == 0, done.stderr
    assert "route execute: remote" in done.stderr and "[answered after 4 steps]" in done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["cove: 1. Fix the operator in add()", "plan:", "1. Fix the operator in add()"]
    assert "cove: Let me look." in lines
    assert any(line.startswith('  -> read_file({"path": "calc.py"})') for line in lines)
    assert lines[-1] == "cove: Fixed add()."
    assert "return a + b" in (root / "calc.py").read_text()
    undo = [sys.executable, "-m", "cove.cli", "undo"]
    undone = subprocess.run(undo, cwd=root, env=env, capture_output=True, text=True, check=False)
    assert undone.returncode == 0 and undone.stdout.startswith("restored checkpoint 1:"), undone.stderr
    assert "before step 2 (edit_file)" in undone.stdout  # the executor's step 2
    assert "return a - b" in (root / "calc.py").read_text()
    again = subprocess.run(undo, cwd=root, env=env, capture_output=True, text=True, check=False)
    assert again.returncode != 0 and "nothing older to undo" in again.stderr


def test_without_a_terminal_decisions_are_refused(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    script = [completion("", [("write_file", '{"path": "x.py", "content": "x = 1"}')]), completion("Gave up.")]
    with scripted_openai_server(script) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        done = cove_agent(root, env, "Add x.py", "--mode", "ask", "--no-plan")
    assert done.returncode == 0, done.stderr
    assert "no terminal to ask: refused" in done.stderr
    assert "did not approve write_file" in done.stdout and not (root / "x.py").exists()


@pytest.mark.model
def test_a_session_end_to_end_with_the_real_local_model(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """The 270M model chooses poorly, but under constrained decoding every call it makes is well-formed."""
    root = repository(tmp_path)
    before = {p.name: p.read_text() for p in root.glob("*.py")}
    env = dict(clean_env, COVE_AGENT_MAX_STEPS="3")

    def decide(event: dict[str, object]) -> tuple[bool, bool | str]:
        return event["kind"] == "plan", ""  # approve the plan, refuse every write and command

    with agent_daemon(env, tmp_path) as client:
        # The base model is refused without `unfit_model_ok`; here its calls' form is what is checked.
        _, events = run_session(client, root, "Fix add() in calc.py", decide, mode="auto-read", unfit_model_ok=True)  # type: ignore[arg-type]
    targets = [r["target"] for r in of_type(events, "route")]
    assert targets and set(targets) == {"local"}, targets  # every model call went to the local model
    finished = of_type(events, "finished")[-1]
    assert finished["stopped"] in ("answered", "max_steps", "todos_open", "no_plan"), finished
    specs = load_specs()
    tools = of_type(events, "tool")
    assert tools, "the model made calls (its three steps went to them): each is checked below"
    for tool in tools:
        specs[tool["tool"]].check(tool["arguments"])  # every call names a tool and fits its schema
    assert {p.name: p.read_text() for p in root.glob("*.py")} == before


def test_max_steps_from_the_command_line_stops_the_run(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    read = completion("", [("read_file", '{"path": "calc.py"}')])
    with scripted_openai_server([read, read, read, completion("Done.")]) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        done = cove_agent(root, env, "Fix add()", "--mode", "full-auto", "--no-plan", "--max-steps", "2")
        requests = len(server.requests)
    assert done.returncode == 1, done.stderr
    assert "[max_steps after 2 steps]" in done.stderr
    assert requests == 2
    refused = cove_agent(root, agent_env, "Fix add()", "--max-steps", "0")
    assert refused.returncode == 2 and "must be at least 1" in refused.stderr
