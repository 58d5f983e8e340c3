"""Cove in a real VS Code workbench: code-server with the extension installed from its .vsix, the real `cove lsp`
and the real model, driven like a user by Debian's Chromium (tests/editors/workbench.py). What VS Code users see is
what this checks: ghost text while typing and its acceptance (whole, and word by word), the status bar's states, a
wrong setting and its fix, the server killed and restarted, the lightbulb's fix reviewed and applied, Ask, a task's
plan approved in a VS Code dialog while the editor's problems reach the run, undo and cancel from the palette.

Where a test needs a capable model's decisions, a scripted OpenAI-compatible server on loopback replays them
(tests/scripted/openai_server.py). Screenshots go to build/screenshots/ for the docs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cove.daemon_client import DaemonClient
from cove.runtime import daemon_paths
from tests.conftest import require
from tests.editors.workbench import missing, open_workbench
from tests.scripted.openai_server import completion, executor_requests, scripted_openai_server

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def workbench_here() -> None:
    require(missing(), "scripts/test installs code-server in build/code-server and Debian's chromium")


CALC = "def add(a, b):\n    return a - b\n"
SHAPES = "import math\n\n\ndef area(radius):\n    return math.pi * radius**2\n\n\n"


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return completion("", [(name, json.dumps(arguments))])


def typed_line(lines: list[str]) -> str:
    """What follows `return` on the line being typed (the last `return` of the file)."""
    returns = [line for line in lines if line.startswith("    return")]
    return returns[-1].removeprefix("    return").strip() if returns else ""


def cove_stats_accepted(env: dict[str, str]) -> int:
    stats = subprocess.run(
        [sys.executable, "-m", "cove.cli", "stats"], env=env, capture_output=True, text=True, check=False
    ).stdout
    totals = next((line.split() for line in stats.splitlines() if line.startswith("all")), [])
    return int(totals[2]) if len(totals) >= 3 else 0


def test_ghost_text_accepted_word_by_word_then_whole_and_counted(tmp_path: Path, clean_env: dict[str, str]) -> None:
    with open_workbench(tmp_path, clean_env, {"shapes.py": SHAPES}) as bench:
        page = bench.page
        bench.open_file("shapes.py")
        bench.wait_ready()
        page.click(".monaco-editor .view-lines")
        page.keyboard.press("Control+End")
        page.keyboard.type("def circumference(radius):\n    return ")
        page.wait_for_selector(".ghost-text-decoration", timeout=120_000)
        line = bench.ghost_line()
        suggested = line.removeprefix("    return ").strip()
        assert len(suggested.split()) >= 2, f"a suggestion of several words to accept one by one: {suggested!r}"
        bench.screenshot("vscode-ghost-text.png")
        # The status bar says who served it (it said "loading" until the model was in memory, and stayed so once).
        page.wait_for_function(
            "() => [...document.querySelectorAll('.statusbar-item')]"
            ".some(e => e.textContent.includes('Cove: local') && !e.textContent.includes('loading'))",
            timeout=30_000,
        )
        page.keyboard.press("Control+ArrowRight")  # VS Code's own acceptNextWord
        typed = bench.wait_lines(lambda lines: typed_line(lines) != "", what="the first word accepted")
        first = typed_line(typed)
        assert suggested.startswith(first) and first != suggested, (first, suggested)
        page.wait_for_selector(".ghost-text-decoration", timeout=10_000)  # the rest still shown
        page.keyboard.press("Tab")
        bench.wait_lines(lambda lines: typed_line(lines) == suggested, what=f"Tab accepting the rest of {suggested!r}")
        # The server writes its counts at exit: "Cove: Restart server" from the palette stops it (and starts another).
        bench.palette("Cove: Restart server")
        deadline = time.monotonic() + 60
        while cove_stats_accepted(bench.env) != 1:
            assert time.monotonic() < deadline, "cove stats did not count the acceptance"
            time.sleep(1)
        history = bench.status_history()
    assert any("starting" in text for text in history), history
    assert any("loading" in text for text in history), history


def test_the_refactor_menu_offers_a_docstring_reviewed_and_applied(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """With the default model only: VS Code's Refactor menu lists the local model's docstring action; it is
    written, its diff shown, and VS Code's dialog applies it."""
    with open_workbench(tmp_path, clean_env, {"shapes.py": SHAPES}) as bench:
        page = bench.page
        bench.open_file("shapes.py")
        bench.wait_ready()
        # A click leaves the cursor at the end of the line: the actions must be found there too (they were not).
        page.click(".monaco-editor .view-line:has-text('return math.pi')")
        menu = None
        for _ in range(4):  # the first request may come before the server has the document; ask again, as a user would
            bench.palette("Refactor...")
            try:
                menu = page.wait_for_selector(".action-widget", timeout=20_000)
                break
            except Exception:
                page.keyboard.press("Escape")
                page.click(".monaco-editor .view-line:has-text('return math.pi')")
        assert menu is not None, "VS Code's Refactor menu never listed Cove's actions"
        page.wait_for_selector(".action-widget :text('add a docstring to area')", timeout=60_000)
        listed = menu.text_content() or ""
        assert "Cove: add a docstring to area (local model)" in listed, listed
        page.click(".action-widget :text('add a docstring to area')")
        apply = bench.notification("Apply")
        bench.screenshot("vscode-docstring-review.png")
        bench.click_button(apply, "Apply")
        page.click(".tabs-container .tab:has-text('shapes.py')")
        bench.wait_lines(lambda lines: len(lines) > 4 and lines[4].startswith('    """'), what="the docstring applied")


def test_status_bar_a_wrong_path_its_fix_a_changed_setting_and_the_server_killed(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """The states a user meets: a wrong cove.path fails with what to do and an Open settings button; fixing it
    starts the server; Ask says what it needs until a chat model is set, then answers; the server killed is
    restarted and the user told."""
    answer = "add() returns the difference of its arguments."
    with scripted_openai_server([completion(answer)]) as scripted:
        files = {"calc.py": CALC}
        with open_workbench(tmp_path, agent_env, files, {"cove.path": str(tmp_path / "no-such-cove")}) as bench:
            page = bench.page
            toast = bench.notification("did not start")
            assert "Set cove.path to the cove executable" in (toast.text_content() or "")
            page.wait_for_selector(".statusbar-item:has-text('Cove: failed')")
            bench.screenshot("vscode-failed.png")
            bench.click_button(toast, "Open settings")
            page.wait_for_selector(".settings-editor:has-text('Cove: Path')", timeout=30_000)  # the Remote tab

            bench.set_settings(**{"cove.path": str(Path(sys.executable).parent / "cove")})
            bench.wait_ready()
            page.keyboard.press("Control+W")  # the settings editor
            bench.open_file("calc.py")

            bench.palette("Cove: Ask about the repository")
            refused = bench.notification("is a base model")  # the server's reason, with what to set
            assert refused.query_selector(".monaco-button:has-text('Open settings')") is not None
            bench.change_setting("cove.remote.model", "scripted")
            bench.change_setting("cove.remote.baseUrl", scripted.url)
            asking = ".quick-input-widget:has-text('A question about this repository')"
            deadline = time.monotonic() + 60
            while True:  # the server hears of the change (didChangeConfiguration); then the agent is fit
                page.keyboard.press("Escape")
                bench.palette("Cove: Ask about the repository")
                try:
                    page.wait_for_selector(asking, timeout=5000)
                    break
                except Exception:
                    assert time.monotonic() < deadline, "the new settings never made the agent fit"
            page.keyboard.type("What does add do?")
            page.keyboard.press("Enter")
            page.wait_for_selector(f".monaco-editor .view-line:has-text('{answer[:30]}')", timeout=120_000)
            bench.screenshot("vscode-ask.png")

            [pid] = bench.cove_servers()
            os.kill(pid, signal.SIGKILL)
            told = bench.notification("stopped unexpectedly and was restarted")
            bench.screenshot("vscode-restarted.png")
            assert told.query_selector(".monaco-button:has-text('Show log')") is not None
            bench.wait_ready()
            assert bench.cove_servers() not in ([], [pid])
            history = bench.status_history()
    assert [text for text in history if "failed" in text], history
    assert history.index(next(t for t in history if "failed" in t)) < len(history) - 1, "ready again after the fix"


def test_lightbulb_fix_plan_approval_problems_reach_the_run_undo_and_cancel(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """With a scripted model server: the lightbulb on TypeScript's error offers Cove's fix, its diff is reviewed and
    applied to the unsaved buffer; a task from the palette shows its plan and asks in a VS Code dialog; the problems
    the editor shows meanwhile (and the save) reach the run as reminders; undo restores the file; cancel stops a run
    waiting on its plan."""
    script = [
        call("edit_file", path="calc.ts", old_text="total: string", new_text="total: number"),  # the fix
        completion("Fixed the type of total."),
        completion("1. Make add() add"),  # the task: its plan, then the executor
        call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"),
        call("todo_write", items=[{"text": "Make add() add", "status": "done"}]),
        completion("Fixed add()."),
        completion("1. Rename add to plus"),  # the task that is cancelled while its plan waits
    ]
    typescript = "export function add(a: number, b: number): number {\n  return a + b;\n}\n\n"
    typescript += "export const total: string = add(1, 2);\n"
    files = {"calc.py": CALC, "calc.ts": typescript}
    with scripted_openai_server(script) as scripted:
        settings = {
            "cove.remote.baseUrl": scripted.url,
            "cove.remote.model": "scripted",
            # Ghost text where the cursor lands would close the light bulb's menu under the click: not this test's.
            "editor.inlineSuggest.enabled": False,
        }
        with open_workbench(tmp_path, agent_env, files, settings) as bench:
            page = bench.page
            bench.open_file("calc.ts")
            bench.wait_ready()
            page.wait_for_selector(".squiggly-error", timeout=120_000)  # TypeScript's own diagnostic
            page.click(".monaco-editor .view-line:has-text('export const total')")
            page.keyboard.press("F8")  # Go to Next Problem: the cursor on TypeScript's error
            page.wait_for_selector(".marker-widget", timeout=30_000)
            page.keyboard.press("Escape")
            for attempt in range(4):  # the light bulb, clicked as a user would (again if the menu did not come)
                page.locator(".lightBulbWidget").click()
                try:
                    page.wait_for_selector(".action-widget :text('Cove: fix')", timeout=15_000)
                    break
                except Exception:
                    assert attempt < 3, "the light bulb never offered Cove's fix"
                    page.keyboard.press("Escape")
            bench.screenshot("vscode-lightbulb.png")
            # A locator, found again when clicked: the menu re-renders as TypeScript's own actions arrive.
            page.locator(".action-widget .monaco-list-row:has-text('Cove: fix')").click()
            apply = bench.notification("Apply Cove's change to calc.ts?")
            bench.screenshot("vscode-fix-review.png")
            bench.click_button(apply, "Apply")
            page.click(".tabs-container .tab:has-text('calc.ts')")
            bench.wait_lines(lambda lines: any("total: number" in line for line in lines), what="the fix applied")
            assert "total: string" in (bench.workspace / "calc.ts").read_text(), "applied to the buffer, not saved"

            bench.palette("Cove: Run an agent task")
            page.wait_for_selector(".quick-input-widget:has-text('What should the agent do?')")
            page.keyboard.type("Make add() add")
            page.keyboard.press("Enter")
            plan = bench.notification("Cove wrote a plan. Approve it?")
            bench.screenshot("vscode-plan-approval.png")
            # Meanwhile the user makes a mistake in calc.ts and saves it: both reach the run.
            page.click(".tabs-container .tab:has-text('calc.ts')")
            page.click(".monaco-editor .view-lines")
            page.keyboard.press("Control+End")
            page.keyboard.type('\nexport const bad: number = "x";\n')
            page.keyboard.press("Control+S")
            page.wait_for_selector(".squiggly-error", timeout=60_000)
            time.sleep(1.5)  # three of the extension's 500 ms debounce periods: cove/diagnostics has gone out
            bench.click_button(plan, "Approve")
            allow = bench.notification("Cove wants to run edit_file")
            bench.click_button(allow, "Allow")
            deadline = time.monotonic() + 120
            while "a + b" not in (bench.workspace / "calc.py").read_text():
                assert time.monotonic() < deadline, "the task's edit never landed"
                time.sleep(0.5)
            page.wait_for_selector(".monaco-editor .view-line:has-text('Fixed add().')", timeout=60_000)
            after_plan = json.dumps(executor_requests(scripted)[-1]["messages"])

            bench.palette("Cove: Undo the last agent change")
            bench.notification("restored checkpoint")
            undone = (bench.workspace / "calc.py").read_text()

            bench.palette("Cove: Run an agent task")
            page.wait_for_selector(".quick-input-widget:has-text('What should the agent do?')")
            page.keyboard.type("Rename add to plus")
            page.keyboard.press("Enter")
            bench.notification("Cove wrote a plan. Approve it?")
            bench.palette("Cove: Cancel")
            bench.notification("Cove: cancelled 1 run")
            requests_after_cancel = len(scripted.requests)
            # The run stops between two steps: the daemon counts it until it has (a positive signal of its end).
            with DaemonClient(daemon_paths(bench.env).socket) as daemon:
                deadline = time.monotonic() + 60
                while daemon.request("status")["agent_runs"]:
                    assert time.monotonic() < deadline, "the cancelled run never stopped"
                    time.sleep(0.2)
            assert len(scripted.requests) == requests_after_cancel, "a cancelled run asks the model nothing more"
    # What TypeScript says while the line is typed may come first ("'const' declarations must be initialized").
    assert re.search(
        r"calc\.ts (now|still) has 1 error\(s\)[^\"]*: line 7: Type 'string' is not assignable", after_plan
    ), after_plan
    assert 'type=\\"file_saved\\"' in after_plan, after_plan
    assert undone == files["calc.py"]


RETRY = (
    '"""Retrying."""\n\n\ndef backoff_delays(base: float, attempts: int) -> list[float]:\n'
    '    """Delays between attempts."""\n    return [base * 2**n for n in range(attempts)]\n'
)
CLIENT = (
    "import time\n\n\ndef fetch(session, url):\n    for delay in backoff_delays(0.5, 4):\n        time.sleep(delay)\n"
)


def test_a_selection_reaches_the_completion_context_shown_beside_the_code(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Lines left selected in one file (the extension sends `cove/yanked`) are in the context of a completion in
    another file that uses their names: *Cove: Show the completion context here* opens it beside the code."""
    env = dict(clean_env, COVE_INDEX_ENABLED="false")  # the ring alone: the index would find the function too
    with open_workbench(tmp_path, env, {"retry.py": RETRY, "client.py": CLIENT}) as bench:
        page = bench.page
        bench.open_file("retry.py")
        bench.wait_ready()
        page.click(".monaco-editor .view-line:has-text('def backoff_delays')")
        page.keyboard.press("Home")
        for _ in range(3):
            page.keyboard.press("Shift+ArrowDown")
        time.sleep(1)  # the selection rests (five debounce periods): only then is it sent
        bench.open_file("client.py")
        page.click(".monaco-editor .view-line:has-text('time.sleep')")
        bench.palette("Cove: Show the completion context here")
        shown = bench.wait_lines(lambda lines: any("(yanked)" in line for line in lines), what="the context shown")
        bench.screenshot("vscode-completion-context.png")
    assert "# retry.py:4 (yanked)" in shown, shown
    assert any(line.startswith("def backoff_delays(base: float, attempts: int)") for line in shown), shown
