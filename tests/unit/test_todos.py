"""The todo list: whole-list writes, plans read as todos, and the reminder that refuses finishing with items open."""

from __future__ import annotations

import pytest

from cove.agent.file_tools import ToolError
from cove.agent.reminders import FinishAttempted, Level, ReminderType, TodoUpdated, reminders_for
from cove.agent.todos import TodoList


def test_a_write_replaces_the_list_and_renders_a_checklist() -> None:
    todos = TodoList()
    out = todos.write([{"text": "read calc.py", "status": "done"}, {"text": "fix  add()", "status": "in_progress"}])
    assert out == "- [x] read calc.py\n- [~] fix add()"
    assert todos.open_items() == ("fix add()",)
    todos.write([])
    assert todos.open_items() == () and todos.render() == ""


@pytest.mark.parametrize(
    "items",
    [[{"text": "", "status": "pending"}], [{"text": "x", "status": "later"}], ["x"], [{"status": "done"}]],
)
def test_malformed_items_are_refused_and_the_list_kept(items: list[object]) -> None:
    todos = TodoList()
    todos.write([{"text": "keep me", "status": "pending"}])
    with pytest.raises(ToolError, match="needs a non-empty text and a status"):
        todos.write(items)  # type: ignore[arg-type]
    assert todos.open_items() == ("keep me",)


def test_a_plan_becomes_todos_in_order() -> None:
    plan = """# Plan
Fix the subtraction bug.

1. Read calc.py and test_calc.py
2) Change `a - b` to `a + b`
- [x] Confirm the failing test
- [ ] Run the tests
* Report
Notes that are not steps.
"""
    todos = TodoList.from_plan(plan)
    assert [(t.text, t.status) for t in todos.items] == [
        ("Read calc.py and test_calc.py", "pending"),
        ("Change `a - b` to `a + b`", "pending"),
        ("Confirm the failing test", "done"),
        ("Run the tests", "pending"),
        ("Report", "pending"),
    ]


def test_finishing_with_open_todos_escalates_until_the_list_is_done() -> None:
    items = ("run the tests",)
    reminders = reminders_for([FinishAttempted(items), FinishAttempted(items), FinishAttempted(items)])
    assert [r.type for r in reminders] == [ReminderType.OPEN_TODOS] * 3
    assert [r.level for r in reminders] == [Level.ADVICE, Level.WARNING, Level.STOP]
    assert "run the tests" in reminders[0].text
    again = reminders_for([FinishAttempted(items), TodoUpdated(()), FinishAttempted(items)])
    assert [r.level for r in again] == [Level.ADVICE, Level.ADVICE]
