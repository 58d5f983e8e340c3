"""The critique before a finish: the critique slot's model reviews the run's diff against the task, the plan and the
last command's output; problems go back to the executor as a reminder (at most once per distinct diff)."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files

from cove.agent.file_tools import FileChange
from cove.inference.chat.chat_model import ChatModel

#: Characters of diff and of command output the critic sees at most.
MAX_DIFF_CHARS = 12_000
MAX_OUTPUT_CHARS = 3_000


@dataclass(frozen=True)
class Review:
    """The critic's verdict: approved, or the problems it found."""

    approved: bool
    findings: str = ""


@dataclass(frozen=True)
class Evidence:
    """What the critic reviews."""

    task: str
    plan: str
    diff: str
    last_command: str = ""


def critic_system() -> str:
    data = tomllib.loads(files("cove.agent").joinpath("critique.toml").read_text(encoding="utf-8"))
    return str(data["system"])


def run_diff(changes: Sequence[FileChange], relative: Callable[..., str]) -> str:
    """One unified diff of a run's changes: per file, from its first `before` to its last `after`."""
    first: dict[str, str | None] = {}
    last: dict[str, str] = {}
    for change in changes:
        name = relative(change.path)
        first.setdefault(name, change.before)
        last[name] = change.after
    parts = []
    for name, after in last.items():
        before = first[name] or ""
        if before != after:
            lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{name}", f"b/{name}")
            parts.append("".join(lines))
    return "".join(parts)


def review(model: ChatModel, evidence: Evidence) -> Review:
    """Ask the critic; an answer that starts with APPROVE (or says nothing) approves."""
    diff = evidence.diff if len(evidence.diff) <= MAX_DIFF_CHARS else evidence.diff[:MAX_DIFF_CHARS] + "\n[... cut]"
    parts = [f"Task:\n{evidence.task}", f"Plan:\n{evidence.plan or '(no plan)'}", f"Diff:\n{diff}"]
    parts.append(f"Last command and its output:\n{evidence.last_command[-MAX_OUTPUT_CHARS:] or '(no command was run)'}")
    messages = [{"role": "system", "content": critic_system()}, {"role": "user", "content": "\n\n".join(parts)}]
    answer = model.chat(messages).content.strip()
    if not answer or answer.upper().startswith("APPROVE"):
        return Review(True)
    return Review(False, answer)
