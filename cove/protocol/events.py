"""The events of an agent run, defined once: the loop and the daemon emit them, the daemon sends them to clients as
`agent/event` notifications (`event_params`), and every client reads them back typed (`parse_event`).

Reading is lenient about fields it does not know (a newer daemon may add some) and strict about the ones it does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from cove.protocol.codec import structure, unstructure
from cove.protocol.codes import INVALID_PARAMS
from cove.protocol.framing import ProtocolError

METHOD = "agent/event"


@dataclass(frozen=True)
class AgentEvent:
    """Something that happened in a run; `type` is its name on the wire."""

    type: ClassVar[str]


@dataclass(frozen=True)
class RouteChosen(AgentEvent):
    """Which model a slot (plan, execute, compact, critique) was routed to, and why."""

    type = "route"
    text: str
    slot: str
    target: str


@dataclass(frozen=True)
class Delta(AgentEvent):
    """A piece of the model's reply, as it streams."""

    type = "delta"
    text: str


@dataclass(frozen=True)
class AssistantReply(AgentEvent):
    """The model's whole reply of a step, and the tools it calls."""

    type = "assistant"
    text: str
    calls: list[str]


@dataclass(frozen=True)
class ToolStarted(AgentEvent):
    """A tool call about to run (asked for approval first where it must be): what it is (`kind`: read, edit, search,
    execute, think, fetch or other, as the Agent Client Protocol names them). Its `ToolCalled` follows."""

    type = "tool_start"
    tool: str
    arguments: dict[str, Any]
    kind: str = "other"


@dataclass(frozen=True)
class ToolOutput(AgentEvent):
    """A piece of a running command's output, as it comes (the whole output is in its `ToolCalled`)."""

    type = "tool_output"
    text: str


@dataclass(frozen=True)
class FileWanted(AgentEvent):
    """A run started with `client_files` reads a file (`path`, in the workspace): the client answers with agent/file
    and `request_id` (its buffer's text, or None for the disk); without an answer in a while the disk is read."""

    type = "file_wanted"
    request_id: int
    path: str


@dataclass(frozen=True)
class ProposedChange:
    """A file change, by its path in the workspace (`before` None: a new file): made by a tool call, or kept by a
    `propose` run for the editor to apply."""

    path: str
    before: str | None
    after: str


@dataclass(frozen=True)
class ToolCalled(AgentEvent):
    """A tool call and its output (`error` when it failed or was refused), and the files it changed."""

    type = "tool"
    tool: str
    arguments: dict[str, Any]
    output: str
    error: str | None = None
    changes: list[ProposedChange] | None = None


@dataclass(frozen=True)
class ReminderShown(AgentEvent):
    """A system reminder that joined the model's context (`id`, `count`: for reminders kept in a session)."""

    type = "reminder"
    reminder: str
    level: str
    text: str
    id: int | None = None
    count: int | None = None


@dataclass(frozen=True)
class PlanWritten(AgentEvent):
    type = "plan"
    text: str
    revision: int = 0


@dataclass(frozen=True)
class PlanDecided(AgentEvent):
    type = "plan_decision"
    approved: bool
    feedback: str = ""


@dataclass(frozen=True)
class TodosChanged(AgentEvent):
    type = "todos"
    text: str
    open: int


@dataclass(frozen=True)
class Compacted(AgentEvent):
    """A compaction stage ran on the context (mask, prune, summarize)."""

    type = "compaction"
    text: str
    stage: str


@dataclass(frozen=True)
class RunWarning(AgentEvent):
    type = "warning"
    text: str


@dataclass(frozen=True)
class HookFailed(AgentEvent):
    """A hook of `[hooks]` that only observes (all but a blocking before_tool) exited non-zero or timed out: the run
    goes on, and the user sees why the hook failed (`status` -1: timed out)."""

    type = "hook_failed"
    point: str
    status: int
    output: str


@dataclass(frozen=True)
class DecisionNeeded(AgentEvent):
    """The run waits for the user: a tool call to allow (`tool`, `arguments`) or a plan to approve (`text`);
    answered with agent/decide and `request_id`."""

    type = "decision"
    request_id: int
    kind: str  # "tool" | "plan"
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    text: str | None = None


@dataclass(frozen=True)
class Finished(AgentEvent):
    """The run ended: "answered", "max_steps", "todos_open", "cancelled", "no_plan", "plan_rejected" or "error"."""

    type = "finished"
    stopped: str
    answer: str = ""
    steps: int = 0
    error: str | None = None
    changes: list[ProposedChange] | None = None


@dataclass(frozen=True)
class MessageAdded(AgentEvent):
    """A user message was added to the session (session/send)."""

    type = "message"
    id: int


EVENT_TYPES: dict[str, type[AgentEvent]] = {
    kind.type: kind
    for kind in (
        RouteChosen,
        Delta,
        AssistantReply,
        ToolStarted,
        ToolOutput,
        ToolCalled,
        ReminderShown,
        PlanWritten,
        PlanDecided,
        TodosChanged,
        Compacted,
        RunWarning,
        HookFailed,
        DecisionNeeded,
        FileWanted,
        Finished,
        MessageAdded,
    )
}


def event_params(session_id: str, event: AgentEvent) -> dict[str, Any]:
    """The `agent/event` notification's params for `event` in a session."""
    return {"session_id": session_id, "type": event.type, **unstructure(event)}


def parse_event(params: Any) -> tuple[str, AgentEvent]:
    """The session and the typed event of an `agent/event` notification's params."""
    if not isinstance(params, dict) or not isinstance(params.get("session_id"), str):
        raise ProtocolError("agent/event: params need a session_id", INVALID_PARAMS)
    kind = EVENT_TYPES.get(params.get("type", ""))
    if kind is None:
        raise ProtocolError(f"agent/event: unknown event type {params.get('type')!r}", INVALID_PARAMS)
    known = {f.name for f in dataclasses.fields(kind)}
    return params["session_id"], structure(kind, {k: v for k, v in params.items() if k in known}, f"{kind.type} event")
