"""An agent run as a user starts it: a plan written with read-only tools, its approval, its todos, then the executor.

Models are routed per workload (plan, execute, compact) and each route taken goes to the transcript. The session's
memory (archived outputs, project notes) lives in the daemon's store. Everything that happens reaches `on_event`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cove.agent.checkpoints import Checkpoints
from cove.agent.command_tool import CommandWatch
from cove.agent.compaction import CompactionPolicy, ContextCompactor, Turn
from cove.agent.critique import review
from cove.agent.file_tools import FileTools, ToolError
from cove.agent.hooks import observe_hook
from cove.agent.loop import AgentLoop, LoopResult, LoopSettings
from cove.agent.mcp_tools import McpTools
from cove.agent.reminders import Event, PlanApproved, ReminderEngine, TodoUpdated
from cove.agent.safety import ApprovalMode, Workspace
from cove.agent.sandbox import Sandbox, unavailable
from cove.agent.sessions import read_project_memory
from cove.agent.store import MemoryStore, NoteScope, StoreError
from cove.agent.todos import TodoList
from cove.agent.tool_registry import ToolRegistry
from cove.config import CoveConfig
from cove.errors import CoveError
from cove.inference.chat.chat_model import ChatModel
from cove.inference.routing import Route, Slot, route
from cove.protocol.events import (
    AgentEvent,
    PlanDecided,
    PlanWritten,
    ProposedChange,
    RouteChosen,
    RunWarning,
    TodosChanged,
    ToolOutput,
)

PLANNER_SYSTEM = (
    "You are Cove's planner. Explore the repository with the read-only tools until you understand the task, then "
    "answer with a plan in markdown: one line stating the goal, then the steps as a numbered list, each one concrete "
    "change or check that names the files and functions involved, ending with running the tests. Change nothing."
)
EXECUTOR_SYSTEM = (
    "You are Cove, a careful coding agent working in this repository. Make the change the task asks for with the "
    "tools. Keep your todo list current with todo_write (mark each item done when it is), run the tests before you "
    "finish, and finish by answering with a short summary of what you changed."
)
ASK_SYSTEM = (
    "You are Cove, answering questions about this repository. Look things up with the read-only tools before you "
    "answer; cite files and line numbers; answer in concise markdown. You cannot change files."
)
SUMMARY_SYSTEM = (
    "Summarise this part of a coding agent's session for the agent itself: what it tried, what it learned (file "
    "names, functions, facts, errors) and what it decided. Keep every fact it may need later; be brief."
)
#: Times a rejected plan is revised with the user's feedback before the run gives up.
MAX_PLAN_REVISIONS = 2


@dataclass(frozen=True)
class PlanDecision:
    """The user's answer to a plan: approved, or rejected with feedback for a revision (none: stop)."""

    approved: bool
    feedback: str = ""


def _never_cancelled() -> bool:
    return False


@dataclass
class RunIO:
    """How a run reaches its user: events out, approvals of tools and plans in, cancellation."""

    on_event: Callable[[AgentEvent], None]
    approve_tool: Callable[[str, dict[str, Any]], bool]
    approve_plan: Callable[[str], PlanDecision]
    cancelled: Callable[[], bool] = field(default=_never_cancelled)
    #: Events from the editor or outside for this run (saves, diagnostics), drained before every step.
    inbox: Callable[[], list[Event]] = field(default=list)


class Models:
    """The chat model of each slot: the remote server when configured and routed there, else the local model,
    which is loaded once, on first use."""

    def __init__(self, config: CoveConfig, local: ChatModel) -> None:
        self.config = config
        self._local = local
        self._remote: ChatModel | None = None
        self._load = threading.Lock()

    def for_slot(self, slot: Slot) -> tuple[ChatModel, Route]:
        remote = self.config.remote
        decision = route(
            self.config.routing, slot, lambda target: None if remote.base_url else "no remote.base_url set"
        )
        if decision.target == "remote":
            from cove.inference.chat.remote import RemoteModel

            with self._load:
                if self._remote is None:
                    self._remote = RemoteModel(remote.base_url, remote.model, remote.api_key_env, remote.offline)
            return self._remote, decision
        return self.local(), decision

    def local(self) -> ChatModel:
        return self._local


def _call_mcp(mcp: McpTools | None, name: str, **arguments: Any) -> str:
    assert mcp is not None
    return mcp.call(name, arguments)


def summarizer(model: ChatModel, on_error: Callable[[str], None]) -> Callable[[Sequence[Turn]], str]:
    """Summaries by the compact model; when it fails, a plain list of the calls made, so compaction never fails."""

    def summarize(turns: Sequence[Turn]) -> str:
        text = "\n".join(f"[{t.role}{' ' + t.call if t.call else ''}] {t.content[:1500]}" for t in turns)
        messages = [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": text[-12_000:]}]
        try:
            summary = model.chat(messages).content.strip()
        except CoveError as err:
            on_error(f"the compact model failed ({err}); kept a list of the calls instead")
            summary = ""
        return summary or "Calls made: " + ", ".join(t.call for t in turns if t.call)

    return summarize


@dataclass
class AgentSession:
    """One session's lasting state across runs: its files' undo history and its todo list."""

    store: MemoryStore
    session_id: str
    root: Path
    #: Changes stay in memory (see FileTools.propose) for an editor to apply.
    propose: bool = False
    #: The workspace index's search (root, query, limit) -> text, for the `search_code` tool (None: no index).
    code_search: Callable[[Path, str, int], str] | None = None
    file_tools: FileTools = field(init=False)
    todos: TodoList = field(default_factory=TodoList)

    def __post_init__(self) -> None:
        self.file_tools = FileTools(Workspace.at(self.root), propose=self.propose)

    def set_overlay(self, texts: dict[str, str]) -> None:
        """Unsaved editor texts, by path; they win over the disk for this session's tools."""
        workspace = self.file_tools.workspace
        self.file_tools.overlay.update({workspace.resolve(path): text for path, text in texts.items()})

    def changes(self) -> list[ProposedChange]:
        """The changes kept in memory (propose mode), as the `finished` event reports them."""
        relative = self.file_tools.workspace.relative
        return [ProposedChange(relative(c.path), c.before, c.after) for c in self.file_tools.proposed()]

    def registry(
        self, mcp: McpTools | None = None, sandbox: Sandbox | None = None, watch: CommandWatch | None = None
    ) -> ToolRegistry:
        project = str(self.root)

        def memory_search(query: str) -> str:
            notes = self.store.search_notes(query, project)
            return "\n".join(f"- ({n.kind}) {n.text}" for n in notes) or f"no notes match {query!r}"

        def memory_write(text: str, kind: str = "fact") -> str:
            note = self.store.write_note(NoteScope.PROJECT, project, kind, text)
            return f"kept note #{note.id}"

        def read_output(ref: int) -> str:
            try:
                return self.store.output(ref)
            except StoreError as err:
                raise ToolError(str(err)) from None

        extra: dict[str, Callable[..., str]] = {
            "memory_search": memory_search,
            "memory_write": memory_write,
            "read_output": read_output,
        }
        if self.code_search is not None:
            code_search = self.code_search
            extra["search_code"] = lambda query, limit=10: code_search(self.root, query, limit)
        registry = ToolRegistry(self.file_tools, self.todos, extra, sandbox=sandbox, watch=watch)
        for spec in mcp.specs.values() if mcp else ():
            registry.add(spec, functools.partial(_call_mcp, mcp, spec.name))
        return registry

    def compactor(self, config: CoveConfig, model: ChatModel, on_error: Callable[[str], None]) -> ContextCompactor:
        agent = config.agent
        policy = CompactionPolicy(
            budget_tokens=agent.budget_tokens,
            mask_percent=agent.mask_percent,
            prune_percent=agent.prune_percent,
            summarize_percent=agent.summarize_percent,
            protect_recent_tokens=agent.protect_recent_tokens,
        )

        def archive(turn: Turn) -> int:
            return self.store.offload_output(self.session_id, turn.call or turn.role, turn.content)

        # Prompt tokens are estimated at four characters each: no tokenizer of a remote model is at hand.
        return ContextCompactor(policy, lambda text: len(text) // 4, archive, summarizer(model, on_error))


def _watch(io: RunIO) -> CommandWatch:
    """A run's watch over its commands: killed when the run is cancelled, their output streamed as events."""
    return CommandWatch(io.cancelled, lambda text: io.on_event(ToolOutput(text)))


def _checkpointer(session: AgentSession, io: RunIO) -> Callable[[int, str], None]:
    """What the loop calls before a step that may write: a checkpoint of the workspace (a failure is said, once, and
    the run goes on)."""
    checkpoints = Checkpoints(session.root)
    failed: list[str] = []

    def checkpoint(step: int, tool: str) -> None:
        try:
            checkpoints.snapshot(session.session_id, step, tool)
        except CoveError as err:
            if not failed:
                io.on_event(RunWarning(f"no checkpoint before {tool} ({err}); `cove undo` cannot undo this step"))
            failed.append(str(err))

    return checkpoint


def _sandbox(config: CoveConfig, root: Path, io: RunIO) -> tuple[Sandbox | None, str]:
    """The run's sandbox, or None and why (said in the run: commands are then asked for in every mode, unless
    `[sandbox] required = false`); the second value is that reason when each command must be approved."""
    why = unavailable()
    if not why:
        return Sandbox.for_workspace(config.sandbox, root), ""
    if config.sandbox.required:
        io.on_event(RunWarning(f"commands are not sandboxed ({why}): each one is asked for, in every mode"))
        return None, why
    io.on_event(RunWarning(f"commands run without a sandbox ({why}), as [sandbox] required = false allows"))
    return None, ""


@dataclass
class RunContext:
    """One run's parts, gathered once: its settings and session, its way to the user, its models and mode, and what
    confines and extends its tools (the sandbox, MCP servers, the checkpoints taken before each writing step)."""

    config: CoveConfig
    session: AgentSession
    io: RunIO
    models: Models
    mode: ApprovalMode
    sandbox: Sandbox | None = None
    #: Why commands run unconfined ("" when the sandbox confines them).
    unconfined: str = ""
    mcp: McpTools | None = None
    checkpoint: Callable[[int, str], None] | None = None

    def registry(self, read_only: bool = False) -> ToolRegistry:
        """The session's tools for this run (the read-only ones only, for a planner or a question)."""
        registry = self.session.registry(self.mcp, self.sandbox, _watch(self.io))
        return registry.restricted(read_only=True) if read_only else registry

    def loop(self, slot: Slot, registry: ToolRegistry, reminders: ReminderEngine, critique: bool = False) -> AgentLoop:
        """An executor loop on the model routed for `slot` (the routes announced), with the critic when asked."""
        config, io = self.config, self.io
        model, decision = self.models.for_slot(slot)
        io.on_event(RouteChosen(decision.describe(), slot.value, decision.target))
        compact_model, compact_route = self.models.for_slot(Slot.COMPACT)
        io.on_event(RouteChosen(compact_route.describe(), Slot.COMPACT.value, compact_route.target))
        critic = None
        if critique and config.agent.critique:
            critic_model, critic_route = self.models.for_slot(Slot.CRITIQUE)
            io.on_event(RouteChosen(critic_route.describe(), Slot.CRITIQUE.value, critic_route.target))
            critic = functools.partial(review, critic_model)
        agent = config.agent
        settings = LoopSettings(
            mode=self.mode,
            allowed_commands=agent.allowed_commands,
            max_steps=agent.max_steps,
            finish_nudges=agent.finish_nudges,
            invariants=read_project_memory(str(self.session.root)) or "",
            hooks=config.hooks,
            approve=io.approve_tool,
            cancelled=io.cancelled,
            inbox=io.inbox,
            critic=critic,
            unconfined=self.unconfined,
            checkpoint=self.checkpoint,
        )
        compactor = self.session.compactor(config, compact_model, lambda text: io.on_event(RunWarning(text)))
        return AgentLoop(model, registry, reminders, compactor, settings, io.on_event)


def run_task(
    config: CoveConfig,
    session: AgentSession,
    task: str,
    io: RunIO,
    models: Models,
    mode: ApprovalMode,
    read_only: bool = False,
) -> LoopResult:
    """Plan (unless turned off), have the plan approved, then execute it; session hooks around it all.
    A `read_only` run answers a question with the read-only tools, without a plan."""
    root = session.root
    observe_hook(config.hooks, "session_start", {"session_id": session.session_id, "task": task}, root, io.on_event)
    sandbox, unconfined = _sandbox(config, root, io)
    mcp = McpTools(config.mcp, root, sandbox if config.sandbox.mcp else None).start() if config.mcp.servers else None
    for failure in mcp.failures if mcp else ():
        io.on_event(RunWarning(failure))
    run = RunContext(config, session, io, models, mode, sandbox, unconfined, mcp, _checkpointer(session, io))
    try:
        if read_only:
            loop = run.loop(Slot.EXECUTE, run.registry(read_only=True), ReminderEngine(config.reminders))
            return loop.run(ASK_SYSTEM, task)
        plan = ""
        if config.agent.plan_first:
            plan, ended = _plan(run, task)
            if ended is not None:
                return ended
        return _execute(run, task, plan)
    finally:
        if mcp is not None:
            mcp.close()
        observe_hook(config.hooks, "session_end", {"session_id": session.session_id}, root, io.on_event)


def _plan(run: RunContext, task: str) -> tuple[str, LoopResult | None]:
    """The approved plan, or the result that ends the run (cancelled, no plan, the plan rejected)."""
    registry = run.registry(read_only=True)
    request = task
    for revision in range(MAX_PLAN_REVISIONS + 1):
        loop = run.loop(Slot.PLAN, registry, ReminderEngine(run.config.reminders))
        result = loop.run(PLANNER_SYSTEM, f"Write the plan for this task:\n{request}")
        if result.stopped == "cancelled":
            return "", result
        plan = result.answer.strip()
        if not plan:
            return "", LoopResult("", result.steps, "no_plan")
        run.io.on_event(PlanWritten(plan, revision))
        decision = PlanDecision(True) if run.mode is ApprovalMode.FULL_AUTO else run.io.approve_plan(plan)
        run.io.on_event(PlanDecided(decision.approved, decision.feedback))
        if decision.approved:
            return plan, None
        if not decision.feedback:
            break
        request = f"{task}\n\nYour previous plan:\n{plan}\n\nThe user's feedback on it: {decision.feedback}"
    return "", LoopResult("", 0, "plan_rejected")


def _execute(run: RunContext, task: str, plan: str) -> LoopResult:
    session = run.session
    reminders = ReminderEngine(run.config.reminders)
    brief = task
    if plan:
        session.todos.items = TodoList.from_plan(plan).items
        reminders.feed(TodoUpdated(session.todos.open_items()))
        approved = reminders.feed(PlanApproved(plan))
        brief = "\n\n".join([task, f"The approved plan:\n{plan}", *(r.as_message()["content"] for r in approved)])
        run.io.on_event(TodosChanged(session.todos.render(), len(session.todos.open_items())))
    loop = run.loop(Slot.EXECUTE, run.registry(), reminders, critique=True)
    return loop.run(EXECUTOR_SYSTEM, brief, plan)
