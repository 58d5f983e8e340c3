"""The critique before a finish: the critique slot reviews the run's diff against the task, the plan and the last
command; what it finds comes back to the executor as a reminder, once per distinct diff. The scripted server plays
both the executor's model and the critic."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from cove.agent.critique import review
from cove.inference.chat.remote import RemoteModel
from tests.agent.daemon_runs import agent_daemon, approve_all, of_type, run_session
from tests.agent.test_loop import make_loop, repository
from tests.scripted.openai_server import completion, executor_requests, scripted_openai_server

FIX = completion("", [("edit_file", '{"path": "calc.py", "old_text": "a - b", "new_text": "a + b"}')])
TESTS = f"{sys.executable} -m pytest -q -p no:cacheprovider"
FINDING = "calc.py: add() is fixed but test_calc.py was never run; run the tests."


def reviews(server: Any) -> list[str]:
    return [
        b["messages"][1]["content"] for _, b in server.requests if b["messages"][0]["content"].startswith("You review")
    ]


def test_findings_reach_the_executor_once_per_diff(tmp_path: Path) -> None:
    root = repository(tmp_path)
    run_tests = completion("", [("run_command", f'{{"command": "{TESTS}"}}')])
    script = [FIX, completion("Done."), run_tests, completion("Ran them: 1 passed. Done.")]
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server(script, critiques=[FINDING]) as server:
        critic = functools.partial(review, RemoteModel(server.url, "critic"))
        result = make_loop(root, server.url, events, critic=critic).run("You are Cove.", "Fix add() in calc.py.")
        asked = reviews(server)
        sent = executor_requests(server)
    assert (result.stopped, result.answer) == ("answered", "Ran them: 1 passed. Done.")
    # One review: the diff did not change after it, so the second finish was not reviewed again.
    [seen] = asked
    assert "Fix add() in calc.py." in seen and "+    return a + b" in seen and "(no command was run)" in seen
    told = "\n".join(m["content"] for m in sent[2]["messages"])
    assert '<system-reminder type="critique"' in told and FINDING in told
    assert [d["reminder"] for kind, d in events if kind == "reminder"].count("critique") == 1


def test_no_change_no_review_and_an_approval_finishes(tmp_path: Path) -> None:
    root = repository(tmp_path)
    events: list[tuple[str, dict[str, Any]]] = []
    with scripted_openai_server([completion("add() subtracts.")]) as server:
        critic = functools.partial(review, RemoteModel(server.url, "critic"))
        result = make_loop(root, server.url, events, critic=critic).run("You are Cove.", "What does add() do?")
        assert reviews(server) == [] and result.stopped == "answered"
    with scripted_openai_server([FIX, completion("Done.")]) as server:  # the critic approves (its default)
        critic = functools.partial(review, RemoteModel(server.url, "critic"))
        result = make_loop(root, server.url, events, critic=critic).run("You are Cove.", "Fix add().")
        assert len(reviews(server)) == 1 and (result.stopped, result.steps) == ("answered", 2)


def test_agent_critique_setting_turns_the_review_off(tmp_path: Path, clean_env: dict[str, str]) -> None:
    for enabled in (True, False):
        (tmp_path / str(enabled)).mkdir()
        root = repository(tmp_path / str(enabled))
        env = dict(clean_env, COVE_AGENT_CRITIQUE=str(enabled).lower())
        with (
            scripted_openai_server([FIX, completion("Done.")]) as server,
            agent_daemon(env, tmp_path / str(enabled), server.url) as client,
        ):
            _, events = run_session(client, root, "Fix add()", approve_all, mode="full-auto", plan_first=False)
            asked = reviews(server)
        assert of_type(events, "finished")[-1]["stopped"] == "answered"
        assert len(asked) == (1 if enabled else 0)
        routes = [r["slot"] for r in of_type(events, "route")]
        assert ("critique" in routes) is enabled
