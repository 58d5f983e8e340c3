"""Whole executor runs driven by a scripted OpenAI-compatible server on loopback, in a temporary repository."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cove.agent import runner
from cove.agent.compaction import CompactionPolicy, ContextCompactor, Turn
from cove.agent.file_tools import FileTools
from cove.agent.loop import AgentLoop, LoopSettings
from cove.agent.reminders import ReminderEngine
from cove.agent.runner import PlanDecision, RunIO
from cove.agent.safety import ApprovalMode, Workspace
from cove.agent.tool_registry import ToolRegistry
from cove.config import CoveConfig, HooksConfig, ReminderConfig, SandboxConfig
from cove.inference.chat.remote import RemoteModel
from cove.protocol.codec import unstructure
from tests.scripted.openai_server import completion, scripted_openai_server


def repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    return root


def make_loop(root: Path, url: str, events: list[tuple[str, dict[str, Any]]], **settings: Any) -> AgentLoop:
    archive: dict[int, Turn] = {}

    def keep(turn: Turn) -> int:
        archive[len(archive) + 1] = turn
        return len(archive)

    def summarize(turns: Sequence[Turn]) -> str:
        return "earlier calls: " + ", ".join(t.call for t in turns if t.call)

    compactor = ContextCompactor(CompactionPolicy(), lambda text: len(text) // 4, keep, summarize)
    return AgentLoop(
        RemoteModel(url, "scripted"),
        ToolRegistry(FileTools(Workspace.at(root))),
        ReminderEngine(ReminderConfig()),
        compactor,
        LoopSettings(invariants="fix add", **settings),
        on_event=lambda event: events.append((event.type, unstructure(event))),
    )


def test_a_run_reads_edits_is_denied_runs_the_tests_and_answers(tmp_path: Path) -> None:
    root = repository(tmp_path)
    pytest_command = f"{sys.executable} -m pytest -q -p no:cacheprovider"
    script = [
        completion("", [("read_file", '{"path": "calc.py"}')]),
        completion("", [("edit_file", '{"path": "calc.py", "old_text": "return a - b", "new_text": "return a + b"}')]),
        completion("", [("run_command", '{"command": "sudo rm -rf /"}')]),
        completion("", [("run_command", f'{{"command": "{pytest_command}"}}')]),
        completion("Fixed add(); the tests pass."),
    ]
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script) as server:
        result = make_loop(root, server.url, events).run("You are Cove.", "Fix add() in calc.py.")
        sent = [body for _, body in server.requests]
    assert (result.stopped, result.steps, result.answer) == ("answered", 5, "Fixed add(); the tests pass.")
    assert (root / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    tools = [data for kind, data in events if kind == "tool"]
    assert "sudo" in str(tools[2]["error"]) and tools[3]["error"] is None and "1 passed" in tools[3]["output"]
    last_prompt = "\n".join(m["content"] for m in sent[-1]["messages"])
    assert '<system-reminder type="tool_denied"' in last_prompt
    assert "+    return a + b" in last_prompt  # the edit's diff went back to the model
    assert {t["function"]["name"] for t in sent[0]["tools"]} >= {"read_file", "edit_file", "run_command"}


def test_loops_malformed_calls_and_unapproved_writes_get_reminders(tmp_path: Path) -> None:
    root = repository(tmp_path)
    read = ("read_file", '{"path": "calc.py"}')
    script = [
        completion("", [read]),
        completion("", [read]),
        completion("", [read]),
        completion("", [("edit_file", '{"path": "calc.py", ')]),
        completion("", [("write_file", '{"path": "new.py", "content": "x = 1"}')]),
        completion("Stopping."),
    ]
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script) as server:
        loop = make_loop(root, server.url, events, mode=ApprovalMode.ASK, approve=lambda tool, args: False)
        result = loop.run("You are Cove.", "Look at calc.py.")
    outputs = [str(data["output"]) for kind, data in events if kind == "tool"]
    reminders = [(data["reminder"], data["text"]) for kind, data in events if kind == "reminder"]
    assert result.stopped == "answered"
    assert [kind for kind, _ in reminders] == ["repeated_call", "tool_failed", "tool_denied"]
    assert "send valid JSON" in outputs[3] and "bad_arguments" in reminders[1][1]
    assert "did not approve write_file" in outputs[4]
    assert not (root / "new.py").exists()


def test_the_step_limit_ends_a_run_that_never_answers(tmp_path: Path) -> None:
    root = repository(tmp_path)
    script = [completion("", [("list_files", "{}")])] * 3
    with scripted_openai_server(script) as server:
        result = make_loop(root, server.url, [], max_steps=3).run("You are Cove.", "Explore.")
    assert (result.stopped, result.steps) == ("max_steps", 3)


def test_finishing_is_refused_while_todos_are_open(tmp_path: Path) -> None:
    root = repository(tmp_path)
    todo = '{"items": [{"text": "fix add", "status": "done"}, {"text": "run the tests", "status": "pending"}]}'
    done = '{"items": [{"text": "fix add", "status": "done"}, {"text": "run the tests", "status": "done"}]}'
    script = [
        completion("", [("todo_write", todo)]),
        completion("All done."),  # refused: "run the tests" is open
        completion("", [("todo_write", done)]),
        completion("All done, really."),
    ]
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script) as server:
        loop = make_loop(root, server.url, events)
        result = loop.run("You are Cove.", "Fix add().")
        sent = [body for _, body in server.requests]
    assert (result.stopped, result.answer) == ("answered", "All done, really.")
    reminders = [data for kind, data in events if kind == "reminder"]
    assert [r["reminder"] for r in reminders] == ["open_todos"]
    assert '<system-reminder type="open_todos"' in sent[2]["messages"][-1]["content"]
    assert "todo_write" in {t["function"]["name"] for t in sent[0]["tools"]}


def test_a_run_that_keeps_finishing_with_open_todos_ends_after_the_nudges(tmp_path: Path) -> None:
    root = repository(tmp_path)
    todo = '{"items": [{"text": "run the tests", "status": "pending"}]}'
    script = [completion("", [("todo_write", todo)])] + [completion("Done.")] * 3
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script) as server:
        result = make_loop(root, server.url, events, finish_nudges=2).run("You are Cove.", "Fix add().")
    assert (result.stopped, result.steps) == ("todos_open", 4)
    assert [d["level"] for k, d in events if k == "reminder"] == ["advice", "warning"]


@pytest.mark.parametrize("unconfined", ["", "bubblewrap is not installed"])
def test_without_a_sandbox_every_command_is_asked_for_with_why_even_in_full_auto(
    tmp_path: Path, unconfined: str
) -> None:
    """`unconfined` is set by the runner when bubblewrap cannot run and `[sandbox] required` (the default); with
    `required = false` it stays empty and full-auto runs commands unasked."""
    root = repository(tmp_path)
    script = [completion("", [("run_command", '{"command": "echo hi"}')]), completion("Done.")]
    asked: list[tuple[str, dict[str, Any]]] = []

    def approve(tool: str, arguments: dict[str, Any]) -> bool:
        asked.append((tool, arguments))
        return True

    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script) as server:
        settings = {"mode": ApprovalMode.FULL_AUTO, "approve": approve, "unconfined": unconfined}
        make_loop(root, server.url, events, **settings).run("You are Cove.", "Say hi.")
    if unconfined:
        assert asked == [("run_command", {"command": "echo hi", "sandbox": "none: bubblewrap is not installed"})]
    else:
        assert asked == []
    assert "hi" in next(str(data["output"]) for kind, data in events if kind == "tool")


@pytest.mark.parametrize("required", [True, False])
def test_a_missing_sandbox_is_said_in_the_run_and_required_decides_the_approvals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, required: bool
) -> None:
    """`[sandbox] required`: with bubblewrap unable to run, true (the default) makes every command need approval
    (the loop's `unconfined`), false lets them run unconfined; both say so in the run."""
    monkeypatch.setattr(runner, "unavailable", lambda: "bubblewrap is not installed")
    events: list[Any] = []
    io = RunIO(events.append, lambda tool, arguments: False, lambda plan: PlanDecision(True))
    config = CoveConfig(sandbox=SandboxConfig(required=required))
    sandbox, unconfined = runner._sandbox(config, tmp_path, io)
    assert sandbox is None
    assert unconfined == ("bubblewrap is not installed" if required else "")
    assert "bubblewrap is not installed" in events[0].text
    assert ("asked for, in every mode" in events[0].text) == required
    monkeypatch.setattr(runner, "unavailable", lambda: "")
    sandbox, unconfined = runner._sandbox(config, tmp_path, io)
    assert sandbox is not None and unconfined == "" and len(events) == 1


def test_a_before_tool_hook_blocks_a_call_with_its_reason_and_after_tool_sees_each_result(tmp_path: Path) -> None:
    """The hooks as the loop calls them: `before_tool` refuses one command (its stderr is the reason the model is
    told), lets the other calls through; `after_tool` gets every call that ran, with its result."""
    root = repository(tmp_path)
    guard = tmp_path / "guard.sh"
    guard.write_text('if grep -q "make deploy"; then echo "deploys go through CI" >&2; exit 2; fi\n')
    log = tmp_path / "after.jsonl"
    hooks = HooksConfig(before_tool=f"sh {guard}", after_tool=f"cat >> {log}; echo >> {log}")
    script = [
        completion("", [("run_command", '{"command": "make deploy"}')]),
        completion("", [("read_file", '{"path": "calc.py"}')]),
        completion("Not deployed: deploys go through CI."),
    ]
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script) as server:
        result = make_loop(root, server.url, events, hooks=hooks).run("You are Cove.", "Deploy.")
        sent = [body for _, body in server.requests]
    assert result.stopped == "answered"
    tools = [data for kind, data in events if kind == "tool"]
    assert tools[0]["error"] == "refused by the before_tool hook: deploys go through CI", tools[0]
    assert tools[1]["error"] is None and "return a - b" in tools[1]["output"]
    assert "deploys go through CI" in "\n".join(str(m["content"]) for m in sent[1]["messages"])
    seen = [json.loads(line) for line in log.read_text().splitlines() if line]
    assert [(e["hook"], e["tool"]) for e in seen] == [("after_tool", "read_file")], seen
    assert "return a - b" in seen[0]["output"]
