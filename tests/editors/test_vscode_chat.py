"""Cove's chat view in a real VS Code workbench (code-server + Chromium, tests/editors/workbench.py): the extension is
an Agent Client Protocol client of `cove acp`, the agent's decisions come from the scripted OpenAI-compatible server.

A question streams its answer with the read's card; an edit opens its diff and asks in the view, Allow changes the
unsaved buffer (one undo step) and Reject leaves it; the window reloaded, the session comes back from the list; Cove
missing is one clear message in the view. Every wait is on the view's or the editor's own state."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.editors.workbench import Workbench, missing, open_workbench
from tests.scripted.openai_server import completion, scripted_openai_server

CALC = "def add(a, b):\n    return a - b\n"


@pytest.fixture(autouse=True)
def workbench_here() -> None:
    require(missing(), "scripts/test installs code-server in build/code-server and Debian's chromium")


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return completion("", [(name, json.dumps(arguments))])


def chat_frame(bench: Workbench, timeout_s: float = 60) -> Any:
    """The chat view's page (a webview: an iframe inside an iframe), once its prompt box is there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for frame in bench.page.frames:
            try:
                if frame.query_selector("#prompt") is not None:
                    return frame
            except Exception:
                continue  # a frame navigating away
        time.sleep(0.2)
    raise AssertionError("the chat view never showed its prompt box")


def open_agent_view(bench: Workbench) -> Any:
    """The agent view opened from the palette, once its session is there (the modes `cove acp` announced)."""
    bench.palette("Cove: Open the agent view")
    frame = chat_frame(bench)
    frame.wait_for_function("() => document.querySelector('#mode').options.length === 3", timeout=120_000)
    return frame


def ask(frame: Any, text: str) -> None:
    frame.click("#prompt")
    frame.fill("#prompt", text)
    frame.press("#prompt", "Enter")


def idle(frame: Any, timeout_s: float = 120) -> None:
    frame.wait_for_function("() => document.body.dataset.running === 'false'", timeout=timeout_s * 1000)


SCRIPT = [
    call("read_file", path="calc.py"),
    completion("add() subtracts **b** from a: it returns `a - b`."),
    call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"),  # allowed
    completion("Fixed add()."),
    call("edit_file", path="calc.py", old_text="a + b", new_text="a * b"),  # rejected
    completion("Left it as it is."),
    completion("Still here."),  # after cove acp was killed: the view started it again
]


def test_chat_streams_an_answer_and_an_edit_is_reviewed_allowed_and_rejected_on_the_unsaved_buffer(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    with scripted_openai_server(SCRIPT) as scripted:
        env = agent_env | {"COVE_AGENT_PLAN_FIRST": "false"}
        settings = {"cove.remote.baseUrl": scripted.url, "cove.remote.model": "scripted"}
        with open_workbench(tmp_path, env, {"calc.py": CALC}, settings) as bench:
            page = bench.page
            bench.open_file("calc.py")
            page.click(".monaco-editor .view-line:has-text('return a - b')")
            page.keyboard.press("End")
            page.keyboard.type("  # unsaved")  # the buffer differs from the disk from here on
            page.keyboard.press("Escape")  # a suggestion shown at the end of the line
            frame = open_agent_view(bench)
            ask(frame, "What does add() in calc.py do?")
            frame.wait_for_selector(".agent:has-text('it returns')", timeout=120_000)
            idle(frame)
            assert frame.inner_text(".agent").strip() == "add() subtracts b from a: it returns a - b."
            card = frame.inner_text("details.tool summary")
            assert "read: read_file calc.py" in card and "completed" in card
            frame.click("details.tool summary")
            assert "# unsaved" in frame.inner_text("details.tool pre"), "the agent read the unsaved buffer"
            bench.screenshot("vscode-chat-answer.png")

            ask(frame, "Fix add().")
            frame.wait_for_selector("[data-permission] button:has-text('Allow once')", timeout=120_000)
            page.wait_for_selector(".tabs-container .tab:has-text('Proposed')", timeout=30_000)  # the diff opened
            bench.screenshot("vscode-chat-diff.png")
            frame.click("[data-permission] button:has-text('Allow once')")
            idle(frame)
            page.click(".tabs-container .tab:has-text('calc.py'):not(:has-text('Proposed'))")
            bench.wait_lines(lambda lines: "    return a + b  # unsaved" in lines, what="the allowed edit")
            assert "Fixed add()." in frame.inner_text("#log")

            ask(frame, "Multiply instead.")
            frame.wait_for_selector("[data-permission] button:has-text('Reject')", timeout=120_000)
            frame.click("[data-permission] button:has-text('Reject')")
            idle(frame)
            page.click(".tabs-container .tab:has-text('calc.py'):not(:has-text('Proposed'))")
            lines = bench.wait_lines(lambda lines: "    return a + b  # unsaved" in lines, what="the buffer")
            assert "    return a * b  # unsaved" not in lines
            assert "Left it as it is." in frame.inner_text("#log")
            page.keyboard.press("Control+Z")  # the agent's edit is one step of VS Code's own undo
            bench.wait_lines(lambda lines: "    return a - b  # unsaved" in lines, what="the edit undone")

            (agent,) = bench.cove_processes(b"acp")
            os.kill(agent, signal.SIGKILL)  # the agent face dies: the view says so, the next message starts it again
            frame.wait_for_selector('.error:has-text("Cove\'s agent stopped")', timeout=30_000)
            ask(frame, "Are you there?")
            frame.wait_for_selector(".agent:has-text('Still here.')", timeout=120_000)
            assert bench.cove_processes(b"acp") not in ([], [agent])


def test_a_missing_cove_is_one_clear_message_in_the_chat(tmp_path: Path, clean_env: dict[str, str]) -> None:
    with open_workbench(tmp_path, clean_env, {"calc.py": CALC}, {"cove.path": "/nowhere/cove"}) as bench:
        bench.page.wait_for_selector(".statusbar-item:has-text('Cove: failed')", timeout=120_000)  # activated
        bench.palette("Cove: Open the agent view")
        frame = chat_frame(bench)
        frame.wait_for_selector(".error", timeout=60_000)
        assert frame.inner_text(".error") == (
            "Cove's agent did not start: `/nowhere/cove` is not an executable file. "
            "Set cove.path to the cove executable."
        )


PLAN = "1. Run the slow check\n2. Report what it said"
PLANNED = [
    completion(PLAN),  # the planner's plan, approved in the view
    call("run_command", command="echo started; sleep 60"),  # allowed, then cancelled with Esc
]


def test_a_plan_is_approved_in_the_view_esc_cancels_a_command_and_the_session_comes_back_after_a_reload(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    with scripted_openai_server(PLANNED) as scripted:
        env = agent_env | {"COVE_AGENT_PLAN_FIRST": "true"}
        settings = {"cove.remote.baseUrl": scripted.url, "cove.remote.model": "scripted"}
        with open_workbench(tmp_path, env, {"calc.py": CALC}, settings) as bench:
            page = bench.page
            page.wait_for_selector(".statusbar-item:has-text('Cove:')", timeout=120_000)  # activated
            frame = open_agent_view(bench)
            ask(frame, "Check that the project is sound.")
            frame.wait_for_selector("[data-permission] button:has-text('Approve the plan')", timeout=120_000)
            assert frame.inner_text("#plan") == "Run the slow check\nReport what it said"
            bench.screenshot("vscode-chat-plan.png")
            frame.click("[data-permission] button:has-text('Approve the plan')")
            frame.wait_for_selector("[data-permission] button:has-text('Allow once')", timeout=120_000)
            frame.click("[data-permission] button:has-text('Allow once')")
            frame.wait_for_selector("details.tool[data-status='in_progress']", timeout=60_000)  # its output streams
            asked = time.monotonic()
            frame.click("#prompt")
            frame.press("#prompt", "Escape")
            idle(frame, timeout_s=30)
            assert time.monotonic() - asked < 15, "Esc stopped the running command (it sleeps 60 s)"
            assert "(cancelled)" in frame.inner_text("#log")
            assert frame.get_attribute("details.tool", "data-status") == "failed"

            page.reload()  # the window reloaded: the session is Cove's, not the view's
            page.wait_for_selector(".statusbar-item:has-text('Cove:')", timeout=120_000)
            frame = open_agent_view(bench)
            assert "Check that the project is sound." not in frame.inner_text("#log")
            frame.click("#sessions")
            past = frame.wait_for_selector("[data-load]", timeout=30_000)
            assert past.inner_text().startswith("Check that the project is sound."), "listed by its first message"
            past.click()
            frame.wait_for_selector(".user:has-text('Check that the project is sound.')", timeout=30_000)
