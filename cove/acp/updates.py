"""What a run's events become in the Agent Client Protocol, and what a client's prompt becomes in a run: pure
functions, no connection (the face, `face.py`, sends what they return).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from urllib.parse import unquote, urlparse

from acp import schema
from acp.helpers import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
    update_user_message_text,
)

from cove.errors import InputError
from cove.protocol.events import (
    AgentEvent,
    AssistantReply,
    Compacted,
    Delta,
    HookFailed,
    PlanWritten,
    ReminderShown,
    RunWarning,
    TodosChanged,
    ToolCalled,
    ToolOutput,
    ToolStarted,
)

#: The longest tool output shown in a tool call's card; the model saw it whole.
MAX_SHOWN_OUTPUT = 8_000
#: How a run's end maps to an ACP stop reason (a run that ended in an error is a JSON-RPC error instead).
STOP_REASONS: dict[str, schema.StopReason] = {
    "answered": "end_turn",
    "todos_open": "end_turn",
    "no_plan": "end_turn",
    "plan_rejected": "end_turn",
    "max_steps": "max_turn_requests",
    "cancelled": "cancelled",
}
_TOOL_KINDS = frozenset(get_args(schema.ToolKind))
_PLAN_LINE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[(?P<mark>[ xX~])\]\s*)?(?P<text>\S.*)$")
_CALLS = re.compile(r"\n\(calls: [^\n]*\)$")  # how the transcript notes a reply's tool calls
_TODO_STATUS: dict[str, schema.PlanEntryStatus] = {"x": "completed", "~": "in_progress", " ": "pending"}

Update = Any  # one of ACP's session updates (the SDK's union of pydantic models)


@dataclass
class Story:
    """One prompt turn told as ACP updates: the tool call in progress (runs call tools one at a time), and whether
    the current reply was streamed (a backend that does not stream sends its reply whole)."""

    root: Path
    #: Starts every tool call id of this turn: ids stay unique across a session's turns.
    prefix: str = "call-"
    next_id: int = 1
    current: str | None = None
    #: The title of the tool call in progress (a permission request shows it).
    title: str = ""
    streamed: bool = False
    #: The running command's output so far (shown whole at each piece: a tool call's content is replaced).
    output: str = ""

    def updates(self, event: AgentEvent) -> list[Update]:
        """The updates an event of the run becomes (none for the ones the client has no place for)."""
        if isinstance(event, Delta):
            self.streamed = True
            return [update_agent_message_text(event.text)] if event.text else []
        if isinstance(event, AssistantReply):
            streamed, self.streamed = self.streamed, False
            return [] if streamed or not event.text.strip() else [update_agent_message_text(event.text)]
        if isinstance(event, ToolStarted):
            self.current, self.output = f"{self.prefix}{self.next_id}", ""
            self.title = title(event.tool, event.arguments)
            self.next_id += 1
            return [self.started(event)]
        if isinstance(event, ToolOutput):
            self.output = (self.output + event.text)[-MAX_SHOWN_OUTPUT:]
            return [update_tool_call(self.current or "call-0", status="in_progress", content=[_text(self.output)])]
        if isinstance(event, ToolCalled):
            return [self.finished(event)]
        if isinstance(event, PlanWritten):
            return [update_plan(plan_entries(event.text))]
        if isinstance(event, TodosChanged):
            return [update_plan(plan_entries(event.text))]
        if isinstance(event, ReminderShown | Compacted | RunWarning):
            return [update_agent_thought_text(f"[{event.type}] {event.text}\n")]
        if isinstance(event, HookFailed):
            return [update_agent_thought_text(f"[hook {event.point}] exited {event.status}: {event.output}\n")]
        return []

    def started(self, event: ToolStarted) -> Update:
        kind: schema.ToolKind = event.kind if event.kind in _TOOL_KINDS else "other"  # type: ignore[assignment]
        return start_tool_call(
            self.current or "call-0",
            title(event.tool, event.arguments),
            kind=kind,
            status="pending",
            locations=self.locations(event.arguments),
            raw_input=event.arguments,
        )

    def finished(self, event: ToolCalled) -> Update:
        call_id, self.current = self.current or f"call-{self.next_id}", None
        content: list[Any] = [
            tool_diff_content(str(self.root / change.path), change.after, change.before)
            for change in event.changes or ()
        ]
        if not content or event.error:
            output = event.output if len(event.output) <= MAX_SHOWN_OUTPUT else event.output[:MAX_SHOWN_OUTPUT] + "…"
            content.append(_text(output))
        return update_tool_call(
            call_id,
            status="failed" if event.error else "completed",
            content=content,
            locations=self.locations(event.arguments),
            raw_output={"output": event.output[:MAX_SHOWN_OUTPUT], "error": event.error},
        )

    def locations(self, arguments: dict[str, Any]) -> list[schema.ToolCallLocation] | None:
        path = arguments.get("path")
        if not isinstance(path, str) or not path:
            return None
        line = arguments.get("start")
        return [schema.ToolCallLocation(path=str(self.root / path), line=line if isinstance(line, int) else None)]


def title(tool: str, arguments: dict[str, Any]) -> str:
    """A tool call's one-line title, as a person would say it."""
    if tool == "run_command":
        return f"$ {arguments.get('command', '')}"
    for key in ("path", "pattern", "query", "name"):
        if isinstance(arguments.get(key), str):
            return f"{tool} {arguments[key]}"
    return tool if not arguments else f"{tool} {json.dumps(arguments, ensure_ascii=False)[:80]}"


def plan_entries(text: str) -> list[schema.PlanEntry]:
    """A plan's or a todo list's items as ACP plan entries (checklists, bullets or numbered steps); the whole text as
    one entry when it has no list."""
    entries = []
    for line in text.splitlines():
        match = _PLAN_LINE.match(line)
        if match:
            status = _TODO_STATUS[(match["mark"] or " ").lower()]
            entries.append(plan_entry(match["text"].strip(), status=status))
    return entries or ([plan_entry(text.strip())] if text.strip() else [])


@dataclass(frozen=True)
class Prompt:
    """A client's prompt as a run takes it: the task's text, and the texts the client sent of files (its buffers,
    which win over the disk)."""

    text: str
    overlay: dict[str, str]


def read_prompt(blocks: list[Any], root: Path) -> Prompt:
    """The task of a prompt: text as written, resource links as mentions, embedded resources (a selection, a file)
    quoted with their place. Images and audio were not offered (prompt capabilities) and are refused."""
    parts: list[str] = []
    overlay: dict[str, str] = {}
    for block in blocks:
        if isinstance(block, schema.TextContentBlock):
            parts.append(block.text)
        elif isinstance(block, schema.ResourceContentBlock):
            parts.append(f"@{_shown_path(block.uri, root)}")
        elif isinstance(block, schema.EmbeddedResourceContentBlock):
            resource = block.resource
            if not isinstance(resource, schema.TextResourceContents):
                raise InputError(f"{resource.uri}: only text resources can be sent to Cove")
            path = _file_path(resource.uri)
            if path is not None and path.is_relative_to(root) and path.is_file():
                overlay[str(path)] = resource.text  # the client's buffer of a whole file
            parts.append(f"{_shown_path(resource.uri, root)}:\n```\n{resource.text}\n```")
        else:
            raise InputError(f"a {block.type} block cannot be sent to Cove: send text, files or selections")
    text = "\n".join(part for part in parts if part)
    if not text.strip():
        raise InputError("the prompt is empty")
    return Prompt(text, overlay)


def transcript_updates(messages: list[dict[str, Any]]) -> list[Update]:
    """A stored session's transcript replayed as the updates that first told it."""
    updates: list[Update] = []
    for number, message in enumerate(messages):
        role, content = message.get("role"), str(message.get("content", ""))
        if role == "user" and not content.startswith("<system-reminder"):
            updates.append(update_user_message_text(content))
        elif role == "assistant" and (said := _CALLS.sub("", content).strip()):
            updates.append(update_agent_message_text(said))
        elif role == "plan":
            updates.append(update_plan(plan_entries(content)))
        elif role == "tool":
            head, _, output = content.partition("\n")
            call_id = f"past-{number}"
            updates.append(start_tool_call(call_id, head[:120], kind="other", status="completed"))
            updates.append(update_tool_call(call_id, content=[tool_content(text_block(output[:MAX_SHOWN_OUTPUT]))]))
    return updates


def _text(text: str) -> schema.ContentToolCallContent:
    return tool_content(text_block(text))


def _file_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri) if uri.startswith("/") else None


def _shown_path(uri: str, root: Path) -> str:
    path = _file_path(uri)
    if path is None:
        return uri
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
