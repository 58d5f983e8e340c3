"""Event-driven system reminders: short messages injected into a long agent session when something happens.

Instructions given at the start of a long session fade as the context fills; a reminder restates what matters at the
moment it matters. The engine is a pure function of the event sequence: feed it events (a tool result, a failed test
run, a save in the editor, a tick of the agent loop) and it yields typed reminders that escalate with repetition
(advice, then warning, then stop), are deduplicated, and can be turned off per type. Templates are package data.
"""

from __future__ import annotations

import enum
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files

from cove.config import ReminderConfig
from cove.errors import ConfigError


class ReminderType(enum.StrEnum):
    """What a reminder is about; each can be disabled in `[reminders] disabled`."""

    TESTS_FAILED = "tests_failed"
    DIAGNOSTICS_CHANGED = "diagnostics_changed"
    TOOL_FAILED = "tool_failed"
    REPEATED_CALL = "repeated_call"
    READS_WITHOUT_PROGRESS = "reads_without_progress"
    STALE_TODOS = "stale_todos"
    CONTEXT_BUDGET = "context_budget"
    PLAN_APPROVED = "plan_approved"
    TOOL_DENIED = "tool_denied"
    OPEN_TODOS = "open_todos"
    FILE_SAVED = "file_saved"
    EXTERNAL = "external"
    CRITIQUE = "critique"


class Level(enum.StrEnum):
    """How firmly a reminder speaks; it rises each time the same problem comes back."""

    ADVICE = "advice"
    WARNING = "warning"
    STOP = "stop"

    @staticmethod
    def for_count(count: int) -> Level:
        """Advice the first time, a warning the second, stop from the third on."""
        return (Level.ADVICE, Level.WARNING, Level.STOP)[min(count, 3) - 1]


# Events, as the agent loop, the editor and outside systems report them.


@dataclass(frozen=True)
class FileSaved:
    path: str


@dataclass(frozen=True)
class DiagnosticsChanged:
    path: str
    errors: int
    first: str = ""


@dataclass(frozen=True)
class TestsFailed:
    __test__ = False  # not a pytest class
    summary: str


@dataclass(frozen=True)
class TestsPassed:
    __test__ = False


@dataclass(frozen=True)
class ToolResult:
    """A tool call and how it ended; `arguments` is canonical JSON so that equal calls compare equal."""

    tool: str
    arguments: str
    read_only: bool
    error: str | None = None


@dataclass(frozen=True)
class CallDenied:
    """A call refused before it ran; `refuser` says who refused it (the user, a policy, a hook)."""

    tool: str
    reason: str = ""
    refuser: str = "the user"


@dataclass(frozen=True)
class TodoUpdated:
    open_items: tuple[str, ...]


@dataclass(frozen=True)
class FinishAttempted:
    """The agent answered (meaning to finish) while todos were open."""

    open_items: tuple[str, ...]


@dataclass(frozen=True)
class ContextUsage:
    used_tokens: int
    budget_tokens: int


@dataclass(frozen=True)
class PlanApproved:
    plan: str


@dataclass(frozen=True)
class External:
    source: str
    message: str


@dataclass(frozen=True)
class StepTaken:
    """One turn of the agent loop."""


@dataclass(frozen=True)
class CritiqueFound:
    """The critique model reviewed the change before the run finished and found problems."""

    findings: str


Event = (
    FileSaved
    | DiagnosticsChanged
    | TestsFailed
    | TestsPassed
    | ToolResult
    | CallDenied
    | TodoUpdated
    | FinishAttempted
    | ContextUsage
    | PlanApproved
    | External
    | StepTaken
    | CritiqueFound
)


@dataclass(frozen=True)
class Reminder:
    """One reminder, ready to be shown to the model and the user."""

    type: ReminderType
    level: Level
    count: int
    text: str

    def as_message(self) -> dict[str, str]:
        """A user-role message, tagged so that the transcript shows it as a reminder and compaction can find it."""
        content = f'<system-reminder type="{self.type}" level="{self.level}">\n{self.text}\n</system-reminder>'
        return {"role": "user", "content": content}


@functools.cache
def _error_classes() -> list[tuple[str, re.Pattern[str], str]]:
    data = tomllib.loads(files("cove.agent").joinpath("error_classes.toml").read_text(encoding="utf-8"))
    return [(item["name"], re.compile(item["pattern"], re.I), item["hint"]) for item in data["class"]]


def classify_error(error: str) -> tuple[str, str]:
    """A category for a tool's error and a hint on what to do about it."""
    for category, pattern, hint in _error_classes():
        if pattern.search(error):
            return category, hint
    return "other", "Read the error and adjust the call."


def load_templates() -> dict[ReminderType, dict[Level, str]]:
    """The reminder templates shipped with Cove."""
    data = tomllib.loads(files("cove.agent").joinpath("reminders.toml").read_text(encoding="utf-8"))
    return {ReminderType(name): {Level(level): text for level, text in levels.items()} for name, levels in data.items()}


@dataclass
class _State:
    counts: dict[tuple[ReminderType, str], int] = field(default_factory=dict)
    last_text: dict[tuple[ReminderType, str], str] = field(default_factory=dict)
    last_event: dict[tuple[ReminderType, str], object] = field(default_factory=dict)
    last_call: tuple[str, str] | None = None
    call_run: int = 0
    read_run: int = 0
    step: int = 0
    todo_step: int = 0
    open_todos: tuple[str, ...] = ()
    context_band: int = 0


class ReminderEngine:
    """Turns events into reminders. Deterministic: the same events always give the same reminders."""

    def __init__(self, config: ReminderConfig, templates: Mapping[ReminderType, Mapping[Level, str]] | None = None):
        known = {t.value for t in ReminderType}
        unknown = sorted(set(config.disabled) - known)
        if unknown:
            raise ConfigError(
                f"reminders.disabled: unknown reminder type(s) {unknown} (known: {', '.join(sorted(known))})"
            )
        self.config = config
        self.templates = templates or load_templates()
        self._disabled = {ReminderType(name) for name in config.disabled}
        self._state = _State()

    def feed(self, event: Event) -> list[Reminder]:
        """The reminders that `event` calls for (often none)."""
        state = self._state
        match event:
            case StepTaken():
                state.step += 1
                return self._check_todos()
            case TodoUpdated(open_items=items):
                state.open_todos, state.todo_step = items, state.step
                self._reset(ReminderType.STALE_TODOS, "")
                if not items:
                    self._reset(ReminderType.OPEN_TODOS, "")
                return []
            case FinishAttempted(open_items=items):
                listed = "; ".join(items[:5]) + (f"; and {len(items) - 5} more" if len(items) > 5 else "")
                return self._emit(ReminderType.OPEN_TODOS, "", repeat_same_text=True, open=len(items), items=listed)
            case ToolResult():
                return self._tool_result(event)
            case CallDenied(tool=tool, reason=reason, refuser=refuser):
                detail = f" ({reason})" if reason else ""
                return self._emit(ReminderType.TOOL_DENIED, tool, tool=tool, reason=detail, refuser=refuser)
            case CritiqueFound(findings=findings):
                return self._emit(ReminderType.CRITIQUE, "", repeat_same_text=True, findings=findings.strip())
            case TestsFailed(summary=summary):
                return self._emit(ReminderType.TESTS_FAILED, "", summary=_short(summary))
            case TestsPassed():
                self._reset(ReminderType.TESTS_FAILED, "")
                return []
            case DiagnosticsChanged(path=path, errors=errors, first=first):
                if errors == 0:
                    self._reset(ReminderType.DIAGNOSTICS_CHANGED, path)
                    return []
                return self._emit(
                    ReminderType.DIAGNOSTICS_CHANGED,
                    path,
                    unless_same=event,
                    path=path,
                    errors=errors,
                    first=_short(first),
                )
            case ContextUsage(used_tokens=used, budget_tokens=budget):
                return self._context(used, budget)
            case PlanApproved(plan=plan):
                return self._emit(ReminderType.PLAN_APPROVED, plan, unless_same=event, plan=_short(plan))
            case FileSaved(path=path):
                return self._emit(ReminderType.FILE_SAVED, path, path=path, repeat_same_text=True)
            case External(source=source, message=message):
                return self._emit(ReminderType.EXTERNAL, f"{source}\n{message}", source=source, message=_short(message))
        return []

    def _tool_result(self, event: ToolResult) -> list[Reminder]:
        state = self._state
        reminders: list[Reminder] = []
        call = (event.tool, event.arguments)
        state.call_run = state.call_run + 1 if call == state.last_call else 1
        state.last_call = call
        if state.call_run >= self.config.repeat_threshold:
            reminders += self._emit(ReminderType.REPEATED_CALL, event.tool, tool=event.tool, times=state.call_run)
        if event.read_only and event.error is None:
            state.read_run += 1
            threshold = self.config.reads_without_progress
            if state.read_run % threshold == 0:
                reminders += self._emit(ReminderType.READS_WITHOUT_PROGRESS, "", reads=state.read_run)
        elif event.error is None:
            state.read_run = 0
            self._reset(ReminderType.READS_WITHOUT_PROGRESS, "")
        if event.error is not None:
            category, hint = classify_error(event.error)
            reminders += self._emit(
                ReminderType.TOOL_FAILED,
                event.tool,
                tool=event.tool,
                category=category,
                hint=hint,
                error=_short(event.error),
            )
        else:
            self._reset(ReminderType.TOOL_FAILED, event.tool)
        return reminders

    def _check_todos(self) -> list[Reminder]:
        state = self._state
        idle = state.step - state.todo_step
        stale = self.config.stale_todo_steps
        if not state.open_todos or idle == 0 or idle % stale:
            return []
        return self._emit(
            ReminderType.STALE_TODOS, "", steps=idle, open=len(state.open_todos), next=state.open_todos[0]
        )

    def _context(self, used: int, budget: int) -> list[Reminder]:
        percent = 100 * used // max(budget, 1)
        start = self.config.context_warning_percent
        band = 0 if percent < start else 1 if percent < (start + 100) // 2 else 2 if percent < 95 else 3
        state = self._state
        if band <= state.context_band:
            state.context_band = min(state.context_band, band)
            return []
        state.context_band = band
        key = (ReminderType.CONTEXT_BUDGET, "")
        state.counts[key] = band - 1
        return self._emit(ReminderType.CONTEXT_BUDGET, "", percent=percent)

    def _reset(self, kind: ReminderType, key: str) -> None:
        self._state.counts.pop((kind, key), None)
        self._state.last_text.pop((kind, key), None)
        self._state.last_event.pop((kind, key), None)

    def _emit(
        self,
        kind: ReminderType,
        key: str,
        repeat_same_text: bool = False,
        unless_same: object | None = None,
        **values: object,
    ) -> list[Reminder]:
        """Count the occurrence and render the reminder; `unless_same` skips an event equal to the last one."""
        slot = (kind, key)
        if unless_same is not None:
            if self._state.last_event.get(slot) == unless_same:
                return []
            self._state.last_event[slot] = unless_same
        count = self._state.counts.get(slot, 0) + 1
        self._state.counts[slot] = count
        if kind in self._disabled:
            return []
        level = Level.for_count(count)
        text = self.templates[kind][level].format(count=count, **values)
        if not repeat_same_text and self._state.last_text.get(slot) == text:
            return []
        self._state.last_text[slot] = text
        return [Reminder(kind, level, count, text)]


def reminders_for(events: Iterable[Event], config: ReminderConfig | None = None) -> list[Reminder]:
    """Every reminder that a sequence of events calls for, in order."""
    engine = ReminderEngine(config or ReminderConfig())
    return [reminder for event in events for reminder in engine.feed(event)]


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
