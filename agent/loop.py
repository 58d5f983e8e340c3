"""The executor loop: ask the model, run the tools it calls (safely), feed the results back, until it answers.

Every tool call passes, in order: the registry's argument check, the before_tool hook, the approval policy (deny
patterns and confinement are enforced inside the tools themselves), the tool, the after_tool hook. Each result is an
event for the reminder engine, whose reminders join the context as tagged user messages; the context is compacted
before every model call. Everything that happens goes to `on_event` for the transcript.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cove.agent.compaction import ContextCompactor, Turn
from cove.agent.critique import Evidence, Review, run_diff
from cove.agent.file_tools import ToolError
from cove.agent.hooks import observe_hook, run_hook
from cove.agent.reminders import (
    CallDenied,
    ContextUsage,
    CritiqueFound,
    Event,
    FinishAttempted,
    Reminder,
    ReminderEngine,
    StepTaken,
    TodoUpdated,
    ToolResult,
)
from cove.agent.safety import ApprovalMode, ToolDenied, denied_command, needs_approval
from cove.agent.tool_registry import ToolRegistry
from cove.config import HooksConfig
from cove.errors import CoveError
from cove.inference.chat.chat_model import ChatModel, ChatReply, ToolCall
from cove.protocol.events import (
    AgentEvent,
    AssistantReply,
    Compacted,
    Delta,
    ProposedChange,
    ReminderShown,
    RunWarning,
    TodosChanged,
    ToolCalled,
    ToolStarted,
)

#: Who the model is told refused a call the user was asked about and declined.
THE_USER = "the user"


@dataclass
class LoopSettings:
    """How the loop runs; `approve` is asked when the approval mode requires it."""

    mode: ApprovalMode = ApprovalMode.FULL_AUTO
    allowed_commands: tuple[str, ...] = ()
    max_steps: int = 50
    #: Times finishing is refused while todos are open.
    finish_nudges: int = 2
    #: The project memory (COVE.md), re-injected after every compaction with the plan, todos and files touched.
    invariants: str = ""
    hooks: HooksConfig = field(default_factory=HooksConfig)
    approve: Callable[[str, dict[str, Any]], bool] = lambda tool, arguments: False
    #: Checked between steps: the run stops ("cancelled") once it returns True.
    cancelled: Callable[[], bool] = lambda: False
    #: Events from outside the run (the editor's saves and diagnostics), drained before every step.
    inbox: Callable[[], list[Event]] = list
    #: Reviews the run's change before it finishes (the critique slot); None: no review.
    critic: Callable[[Evidence], Review] | None = None
    #: Why commands run without a sandbox when each must then be approved, in every mode ([sandbox] required and
    #: bubblewrap cannot run); "" when they are sandboxed or may run unconfined.
    unconfined: str = ""
    #: Takes a checkpoint of the workspace (agent/checkpoints.py) before a step's call that may write: (step, tool).
    checkpoint: Callable[[int, str], None] | None = None


@dataclass
class LoopResult:
    """How a run ended: the model's final answer, or why it stopped."""

    answer: str
    steps: int
    stopped: str  # "answered" | "max_steps" | "todos_open" | "cancelled"


class AgentLoop:
    """One executor run over a workspace."""

    def __init__(
        self,
        model: ChatModel,
        tools: ToolRegistry,
        reminders: ReminderEngine,
        compactor: ContextCompactor,
        settings: LoopSettings,
        on_event: Callable[[AgentEvent], None] = lambda event: None,
    ) -> None:
        self.model, self.tools, self.reminders, self.compactor = model, tools, reminders, compactor
        self.settings, self.on_event = settings, on_event
        self.plan = ""
        #: Paths the run has read or edited, for the invariants.
        self.touched: dict[str, str] = {}
        #: The last command the run ran and its output, for the critique.
        self.last_command = ""
        self._changes_from = len(tools.file_tools.history)
        self._step = 0
        self._reviewed_diff = ""

    def run(self, system: str, task: str, plan: str = "") -> LoopResult:
        """Work on `task` until the model answers with no todo open (or gives up on them), or the step limit."""
        self.plan = plan
        turns = [Turn("system", system), Turn("user", task)]
        refusals = 0
        for step in range(1, self.settings.max_steps + 1):
            self._step = step
            if self.settings.cancelled():
                return LoopResult("", step - 1, "cancelled")
            for event in self.settings.inbox():
                self._remind(turns, self.reminders.feed(event))
            turns = self._compact(turns)
            reply = self.model.chat(
                _messages(turns), self.tools.prompt_schemas(), lambda text: self.on_event(Delta(text))
            )
            self.on_event(AssistantReply(reply.content, [c.name for c in reply.tool_calls]))
            if not reply.tool_calls:
                open_items = self.tools.todos.open_items()
                if not open_items:
                    findings = self._critique(task)
                    if findings is None:
                        return LoopResult(reply.content, step, "answered")
                    turns.append(Turn("assistant", reply.content))
                    self._remind(turns, self.reminders.feed(CritiqueFound(findings)))
                    continue
                refusals += 1
                if refusals > self.settings.finish_nudges:
                    return LoopResult(reply.content, step, "todos_open")
                turns.append(Turn("assistant", reply.content))
                self._remind(turns, self.reminders.feed(FinishAttempted(open_items)))
                continue
            turns.append(Turn("assistant", _describe_calls(reply)))
            for call in reply.tool_calls:
                turns.append(Turn("tool", self._execute(call), call=f"{call.name}({_short(call.arguments)})"))
            self._remind(turns, self.reminders.feed(StepTaken()))
        return LoopResult("", self.settings.max_steps, "max_steps")

    def _critique(self, task: str) -> str | None:
        """The critic's findings on the run's change, or None to finish: no critic, no change, a change already
        reviewed, or an approval. A failing critic lets the run finish (with a warning)."""
        history = self.tools.file_tools.history[self._changes_from :]
        if self.settings.critic is None or not history:
            return None
        diff = run_diff(history, self.tools.workspace.relative)
        if not diff or diff == self._reviewed_diff:
            return None
        self._reviewed_diff = diff
        try:
            review = self.settings.critic(Evidence(task, self.plan, diff, self.last_command))
        except CoveError as err:
            self.on_event(RunWarning(f"the critique model failed ({err}); finishing without a review"))
            return None
        return None if review.approved else review.findings

    def _compact(self, turns: list[Turn]) -> list[Turn]:
        """Compaction before a model call, between the compaction hooks when it does anything; the context's use
        before it goes to the reminders (the context_budget reminder)."""
        tokens = self.compactor.tokens(turns)
        self._remind(turns, self.reminders.feed(ContextUsage(tokens, self.compactor.policy.budget_tokens)))
        tokens = self.compactor.tokens(turns)
        due = self.compactor.due(tokens)
        if due:
            observe_hook(self.settings.hooks, "before_compaction", {"tokens": tokens}, self._root(), self.on_event)
        turns, compactions = self.compactor.compact(turns, self.invariants())
        for compaction in compactions:
            self.on_event(Compacted(compaction.describe(), compaction.stage))
        if due:
            done = [c.describe() for c in compactions]
            observe_hook(self.settings.hooks, "after_compaction", {"compactions": done}, self._root(), self.on_event)
        return turns

    def invariants(self) -> str:
        """What must survive every compaction: COVE.md, the plan, the open todos, the files touched."""
        parts = [self.settings.invariants.strip()]
        if self.plan:
            parts.append(f"The approved plan:\n{self.plan.strip()}")
        todos = self.tools.todos.render()
        if todos:
            parts.append(f"Todo list:\n{todos}")
        if self.touched:
            parts.append("Files touched: " + ", ".join(f"{path} ({how})" for path, how in sorted(self.touched.items())))
        return "\n\n".join(part for part in parts if part)

    def _remind(self, turns: list[Turn], reminders: list[Reminder]) -> None:
        for reminder in reminders:
            self.on_event(ReminderShown(reminder.type.value, reminder.level.value, reminder.text))
            turns.append(Turn("user", reminder.as_message()["content"]))

    def _execute(self, call: ToolCall) -> str:
        """Run one call; every failure becomes text for the model plus a classified reminder, never a crash."""
        arguments = json.dumps(call.arguments, sort_keys=True)
        spec = self.tools.specs.get(call.name)
        read_only = spec.read_only if spec else True
        error: str | None = None
        self.on_event(ToolStarted(call.name, call.arguments, spec.kind if spec else "other"))
        changed_from = len(self.tools.file_tools.history)
        try:
            if call.error is not None:
                raise ToolError(f"invalid arguments for {call.name}: {call.error}; send valid JSON")
            self._gate(call, read_only)
            if not read_only and self.settings.checkpoint is not None:  # a call that may write: checkpoint first
                self.settings.checkpoint(self._step, call.name)
            output = self.tools.call(call.name, call.arguments)
        except ToolDenied as denied:
            output = error = f"refused by {denied.refuser}: {denied}"
            reminders = self.reminders.feed(CallDenied(call.name, str(denied), denied.refuser))
        except CoveError as failed:
            output = error = f"error: {failed}"
            reminders = self.reminders.feed(ToolResult(call.name, arguments, read_only, str(failed)))
        except Exception as crashed:  # a crashing tool must not end the session
            output = error = f"error: the tool crashed: {crashed.__class__.__name__}: {crashed}"
            reminders = self.reminders.feed(ToolResult(call.name, arguments, read_only, output))
        else:
            reminders = self.reminders.feed(ToolResult(call.name, arguments, read_only))
            self._note_success(call)
            observe_hook(
                self.settings.hooks,
                "after_tool",
                {"tool": call.name, "output": output[:2000]},
                self._root(),
                self.on_event,
            )
        if call.name == "run_command":
            self.last_command = f"$ {call.arguments.get('command', '')}\n{output}"
        changes = [
            ProposedChange(self.tools.workspace.relative(change.path), change.before, change.after)
            for change in self.tools.file_tools.history[changed_from:]
        ]
        self.on_event(ToolCalled(call.name, call.arguments, output, error, changes or None))
        for reminder in reminders:
            self.on_event(ReminderShown(reminder.type.value, reminder.level.value, reminder.text))
        notes = "\n".join(r.as_message()["content"] for r in reminders)
        return f"{output}\n{notes}" if notes else output

    def _note_success(self, call: ToolCall) -> None:
        if call.name == "todo_write":
            self.reminders.feed(TodoUpdated(self.tools.todos.open_items()))
            self.on_event(TodosChanged(self.tools.todos.render(), len(self.tools.todos.open_items())))
        path = call.arguments.get("path")
        if isinstance(path, str) and call.name in ("read_file", "edit_file", "write_file"):
            edited = call.name != "read_file" or self.touched.get(path) == "edited"
            self.touched[path] = "edited" if edited else "read"

    def _gate(self, call: ToolCall, read_only: bool) -> None:
        run_hook(self.settings.hooks, "before_tool", {"tool": call.name, "arguments": call.arguments}, self._root())
        command = call.arguments.get("command") if call.name == "run_command" else None
        if isinstance(command, str) and (reason := denied_command(command)) is not None:
            raise ToolDenied(reason)  # refused in every mode by Cove's policy: the user is not even asked
        settings = self.settings
        unconfined = isinstance(command, str) and bool(settings.unconfined)
        asked = unconfined or needs_approval(settings.mode, read_only, command, settings.allowed_commands)
        # An unconfined command is asked for with why, so that the user knows what approving it means.
        shown = {**call.arguments, "sandbox": f"none: {settings.unconfined}"} if unconfined else call.arguments
        if asked and not settings.approve(call.name, shown):
            raise ToolDenied(f"the user did not approve {call.name}", refuser=THE_USER)

    def _root(self) -> Path:
        return self.tools.workspace.root


def _messages(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    # Tool results travel as user messages: every OpenAI-compatible server accepts those, whatever its tool support.
    return [
        {"role": "user" if t.role == "tool" else t.role, "content": f"[{t.call}]\n{t.content}" if t.call else t.content}
        for t in turns
    ]


def _describe_calls(reply: ChatReply) -> str:
    calls = ", ".join(f"{c.name}({_short(c.arguments)})" for c in reply.tool_calls)
    return f"{reply.content}\nCalling: {calls}".strip()


def _short(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= 120 else text[:119] + "…"
