"""The reminder engine is a pure function of the event sequence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cove.agent.reminders import (
    CallDenied,
    ContextUsage,
    DiagnosticsChanged,
    Event,
    External,
    FileSaved,
    Level,
    PlanApproved,
    ReminderType,
    StepTaken,
    TestsFailed,
    TestsPassed,
    TodoUpdated,
    ToolResult,
    classify_error,
    load_templates,
    reminders_for,
)
from cove.config import ReminderConfig, load_config
from cove.errors import ConfigError


def read(path: str) -> ToolResult:
    return ToolResult("read_file", json.dumps({"path": path}), read_only=True)


def test_every_type_has_a_template_for_every_level() -> None:
    templates = load_templates()
    assert set(templates) == set(ReminderType)
    assert all(set(levels) == set(Level) for levels in templates.values())


def test_failing_tests_escalate_and_reset_when_they_pass() -> None:
    events: list[Event] = [TestsFailed("test_parse: assert 1 == 2")] * 3
    events += [TestsPassed(), TestsFailed("test_parse")]
    got = reminders_for(events)
    assert [r.level for r in got] == [Level.ADVICE, Level.WARNING, Level.STOP, Level.ADVICE]
    assert all(r.type is ReminderType.TESTS_FAILED for r in got)
    assert "assert 1 == 2" in got[0].text


def test_unchanged_diagnostics_are_not_repeated() -> None:
    same = DiagnosticsChanged("a.py", 2, "undefined name 'x'")
    got = reminders_for([same, same, DiagnosticsChanged("a.py", 1, "undefined name 'y'")])
    assert [r.level for r in got] == [Level.ADVICE, Level.WARNING]
    assert reminders_for([DiagnosticsChanged("a.py", 0)]) == []


def test_repeated_identical_calls_are_a_loop() -> None:
    got = reminders_for([read("a.py")] * 5, ReminderConfig(reads_without_progress=100))
    assert [r.type for r in got] == [ReminderType.REPEATED_CALL] * 3
    assert [r.level for r in got] == [Level.ADVICE, Level.WARNING, Level.STOP]
    assert "read_file" in got[0].text and "3 times" in got[0].text


def test_many_reads_without_an_edit_is_lack_of_progress() -> None:
    reads = [read(f"f{i}.py") for i in range(8)]
    got = reminders_for(reads)
    assert [r.type for r in got] == [ReminderType.READS_WITHOUT_PROGRESS]
    edit = ToolResult("edit_file", "{}", read_only=False)
    assert reminders_for([*reads[:7], edit, *reads[:7]]) == []


def test_a_failed_tool_gets_a_classified_hint() -> None:
    [reminder] = reminders_for([ToolResult("edit_file", "{}", False, "old text not found in src/a.py")])
    assert reminder.type is ReminderType.TOOL_FAILED
    assert "edit_no_match" in reminder.text and "copy the exact text" in reminder.text


@pytest.mark.parametrize(
    ("error", "category"),
    [
        ("FileNotFoundError: [Errno 2] No such file or directory: 'x'", "file_not_found"),
        ("command timed out after 30 s", "timeout"),
        ("old_text matches 3 times", "edit_ambiguous"),
        ("  File 'a.py', line 3\nSyntaxError: invalid syntax", "syntax"),
        ("pytest returned non-zero exit status 1", "command_failed"),
        ("path ../etc/passwd is outside the workspace", "outside_workspace"),
        ("something odd", "other"),
    ],
)
def test_classify_error(error: str, category: str) -> None:
    assert classify_error(error)[0] == category


def test_stale_todos_after_steps_without_an_update() -> None:
    events: list[Event] = [TodoUpdated(("write tests", "fix bug")), *[StepTaken()] * 12]
    [reminder] = reminders_for(events)
    assert reminder.type is ReminderType.STALE_TODOS and "write tests" in reminder.text
    assert reminders_for([TodoUpdated(()), *[StepTaken()] * 30]) == []


def test_context_budget_warns_once_per_band() -> None:
    events = [ContextUsage(n, 1000) for n in (500, 810, 820, 900, 960, 970)]
    got = reminders_for(events)
    assert [r.level for r in got] == [Level.ADVICE, Level.WARNING, Level.STOP]
    assert "81%" in got[0].text


def test_denials_saves_plans_and_outside_events() -> None:
    got = reminders_for(
        [
            CallDenied("run_command", "not now"),
            CallDenied("run_command"),
            FileSaved("a.py"),
            FileSaved("a.py"),
            PlanApproved("1. add parser"),
            PlanApproved("1. add parser"),
            External("ci", "tests failed on main"),
        ]
    )
    assert [r.type for r in got] == [
        ReminderType.TOOL_DENIED,
        ReminderType.TOOL_DENIED,
        ReminderType.FILE_SAVED,
        ReminderType.FILE_SAVED,
        ReminderType.PLAN_APPROVED,
        ReminderType.EXTERNAL,
    ]
    assert "(not now)" in got[0].text


def test_disabled_types_are_silent_and_unknown_names_are_config_errors() -> None:
    assert reminders_for([TestsFailed("x")], ReminderConfig(disabled=("tests_failed",))) == []
    with pytest.raises(ConfigError, match="unknown reminder type"):
        reminders_for([], ReminderConfig(disabled=("nonsense",)))


def test_reminder_is_a_tagged_user_message() -> None:
    [reminder] = reminders_for([TestsFailed("boom")])
    message = reminder.as_message()
    assert message["role"] == "user"
    assert message["content"].startswith('<system-reminder type="tests_failed" level="advice">')


def test_same_events_same_reminders() -> None:
    events: list[Event] = [read("a"), read("a"), read("a"), TestsFailed("x"), StepTaken(), ContextUsage(900, 1000)]
    assert reminders_for(events) == reminders_for(events)


def test_the_thresholds_in_a_config_file_take_effect(tmp_path: Path) -> None:
    """`[reminders]` from the user's config file: a loop after 2 identical calls, stale todos after 3 steps, the
    context warning from 50% (the defaults: 3, 12, 80)."""
    (tmp_path / "cove").mkdir()
    (tmp_path / "cove" / "config.toml").write_text(
        "[reminders]\nrepeat_threshold = 2\nstale_todo_steps = 3\ncontext_warning_percent = 50\n"
        "reads_without_progress = 100\n"
    )
    config = load_config(env={"XDG_CONFIG_HOME": str(tmp_path)}).config.reminders
    assert [r.type for r in reminders_for([read("a.py")] * 2, config)] == [ReminderType.REPEATED_CALL]
    assert reminders_for([read("a.py")] * 2) == [], "the default threshold is 3"
    stale = reminders_for([TodoUpdated(("write tests",)), *[StepTaken()] * 3], config)
    assert [r.type for r in stale] == [ReminderType.STALE_TODOS]
    assert reminders_for([TodoUpdated(("write tests",)), *[StepTaken()] * 3]) == []
    [warned] = reminders_for([ContextUsage(550, 1000)], config)
    assert warned.type is ReminderType.CONTEXT_BUDGET and "55%" in warned.text
    assert reminders_for([ContextUsage(550, 1000)]) == []
