"""The agent's todo list: written whole by the `todo_write` tool, read from an approved plan, kept as invariants.

A run may not finish while items are open: the loop refuses (a bounded number of times) and the reminder engine says
which items remain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from cove.agent.file_tools import ToolError

Status = Literal["pending", "in_progress", "done"]
STATUSES: tuple[Status, ...] = ("pending", "in_progress", "done")
MAX_ITEMS = 20
MAX_TEXT = 200
_MARKS = {"pending": "[ ]", "in_progress": "[~]", "done": "[x]"}

#: A plan's actionable lines: "- [ ] step", "* step", "1. step", "2) step".
_PLAN_ITEM = re.compile(r"^\s*(?:[-*+]\s+(?:\[(?P<mark>[ xX~])\]\s+)?|\d+[.)]\s+)(?P<text>\S.*)$")


@dataclass(frozen=True)
class Todo:
    text: str
    status: Status = "pending"


class TodoList:
    """The current list; every write replaces it whole, as the model sees it."""

    def __init__(self, items: list[Todo] | None = None) -> None:
        self.items: list[Todo] = list(items or [])

    def write(self, items: list[dict[str, Any]]) -> str:
        """`todo_write`: replace the list; returns it rendered. Malformed items are a ToolError."""
        if len(items) > MAX_ITEMS:
            raise ToolError(f"at most {MAX_ITEMS} todo items; merge small steps")
        parsed: list[Todo] = []
        for number, item in enumerate(items, 1):
            text, status = (item.get("text"), item.get("status", "pending")) if isinstance(item, dict) else (None, None)
            if not isinstance(text, str) or not text.strip() or status not in STATUSES:
                raise ToolError(f"todo item {number} needs a non-empty text and a status in {list(STATUSES)}")
            parsed.append(Todo(" ".join(text.split())[:MAX_TEXT], status))
        self.items = parsed
        return self.render() or "the todo list is empty"

    def open_items(self) -> tuple[str, ...]:
        return tuple(item.text for item in self.items if item.status != "done")

    def render(self) -> str:
        """A markdown checklist: `[x]` done, `[~]` in progress, `[ ]` pending."""
        return "\n".join(f"- {_MARKS[item.status]} {item.text}" for item in self.items)

    @classmethod
    def from_plan(cls, plan: str) -> TodoList:
        """The plan's list items (checklists, bullets or numbered steps) as todos, in order."""
        items: list[Todo] = []
        for line in plan.splitlines():
            match = _PLAN_ITEM.match(line)
            if match and len(items) < MAX_ITEMS:
                done = (match["mark"] or " ").lower() == "x"
                items.append(Todo(" ".join(match["text"].split())[:MAX_TEXT], "done" if done else "pending"))
        return cls(items)
