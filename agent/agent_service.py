"""Agent runs inside the daemon: `agent/run` starts one in a worker thread, its transcript streams to the client
as `agent/event` notifications (and is written to the session), and the user's decisions come back through
`agent/decide`. `agent/cancel` stops a run between steps; `agent/undo` reverts the session's last file change.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove.agent.file_tools import ToolError
from cove.agent.reminders import Event
from cove.agent.runner import AgentSession, Models, PlanDecision, RunIO, run_task
from cove.agent.safety import ApprovalMode
from cove.agent.service import Method
from cove.agent.store import MemoryStore
from cove.agent.tool_registry import load_specs
from cove.config import CoveConfig, apply_layer, load_config
from cove.errors import ConfigError, CoveError
from cove.inference.chat.chat_model import ChatModel
from cove.inference.model.fitness import check_agent
from cove.protocol.codec import unstructure
from cove.protocol.codes import INVALID_PARAMS, UNFIT_MODEL
from cove.protocol.events import (
    AgentEvent,
    AssistantReply,
    DecisionNeeded,
    FileWanted,
    Finished,
    PlanWritten,
    ReminderShown,
    ToolCalled,
    event_params,
)
from cove.protocol.framing import ProtocolError
from cove.protocol.params import AgentCancel, AgentDecide, AgentFile, AgentRun, AgentUndo

logger = logging.getLogger(__name__)

#: Seconds a run waits for the user's decision on a tool call or a plan before taking it as a refusal.
DECISION_TIMEOUT_S = 900.0
#: Seconds a run waits for its client's text of a file (`client_files`) before reading the disk.
FILE_TIMEOUT_S = 30.0

#: Tools whose changes, in a `propose` run, are only proposals (the user reviews them in the editor): not asked.
PROPOSED_TOOLS = frozenset(name for name, spec in load_specs().items() if spec.proposable)

Deliver = Callable[[Any, dict[str, Any]], None]


class Run:
    """A run in progress: its pending decisions, its cancellation flag, and events from the editor for it."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.pending: dict[int, tuple[threading.Event, list[PlanDecision]]] = {}
        self.files: dict[int, tuple[threading.Event, list[str | None]]] = {}
        self.done = False

    def decide(self, request_id: int, decision: PlanDecision) -> None:
        waiting = self.pending.get(request_id)
        if waiting is None:
            raise ProtocolError(f"no decision {request_id} is pending in this run", INVALID_PARAMS)
        waiting[1].append(decision)
        waiting[0].set()

    def provide(self, request_id: int, text: str | None) -> None:
        waiting = self.files.get(request_id)
        if waiting is None:
            raise ProtocolError(f"no file {request_id} is wanted in this run", INVALID_PARAMS)
        waiting[1].append(text)
        waiting[0].set()

    def wait(self, answered: threading.Event, timeout_s: float) -> bool:
        """Wait for an answer until the run is cancelled or `timeout_s` passes; whether it came."""
        deadline = time.monotonic() + timeout_s
        while not answered.wait(0.2):
            if self.cancel.is_set() or time.monotonic() > deadline:
                return False
        return True

    def drain(self) -> list[Event]:
        events: list[Event] = []
        while not self.inbox.empty():
            events.append(self.inbox.get_nowait())
        return events


class AgentService:
    """The daemon's agent methods. `deliver(client, params)` sends an `agent/event` to the run's client and to
    every subscriber, from any thread."""

    def __init__(
        self,
        store: MemoryStore,
        deliver: Deliver,
        local_model: Callable[[CoveConfig], ChatModel],
        code_search: Callable[[Path, str, int], str] | None = None,
    ) -> None:
        self.store = store
        #: The workspace index's search, for the agent's `search_code` tool.
        self.code_search = code_search
        self.deliver = deliver
        #: The local model of a run's config: the host's (loaded on first use), which completions on the same model
        #: share.
        self.local_model = local_model
        self.sessions: dict[str, AgentSession] = {}
        self.runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def methods(self) -> list[Method]:
        return [
            Method(AgentRun, self._run),
            Method(AgentDecide, self._decide),
            Method(AgentFile, self._file),
            Method(AgentCancel, self._cancel),
            Method(AgentUndo, self._undo),
        ]

    def active(self) -> bool:
        """Whether any run is in progress."""
        return self.in_progress() > 0

    def in_progress(self) -> int:
        """How many runs are in progress (a cancelled run counts until it has stopped)."""
        return sum(not run.done for run in self.runs.values())

    def running_in(self, project: str) -> bool:
        """Whether a run is in progress in the project at `project` (a resolved path)."""
        return any(
            not run.done and session_id in self.sessions and str(self.sessions[session_id].root.resolve()) == project
            for session_id, run in self.runs.items()
        )

    def inbox(self, session_id: str) -> queue.SimpleQueue[Event] | None:
        """Where editor events for a session go while it has a run in progress (else None)."""
        run = self.runs.get(session_id)
        return run.inbox if run is not None and not run.done else None

    async def _run(self, client: Any, params: AgentRun) -> dict[str, Any]:
        session = await asyncio.to_thread(self.store.session, params.session_id)
        if params.session_id in self.runs and not self.runs[params.session_id].done:
            raise ProtocolError("this session already has a run in progress; agent/cancel stops it", INVALID_PARAMS)
        if not params.task.strip():
            raise ProtocolError("agent/run: the task is empty", INVALID_PARAMS)
        config = await asyncio.to_thread(run_config, Path(session.project), params)
        fitness = await asyncio.to_thread(check_agent, config)
        if not fitness.fit and not params.unfit_model_ok:  # a run that could only answer "..." is not started
            raise ProtocolError(f"agent/run: {fitness.reason}. To run the agent, {fitness.hint}", UNFIT_MODEL)
        mode = ApprovalMode(config.agent.mode)
        agent_session = self.sessions.get(session.id)
        if agent_session is None or agent_session.propose != params.propose:
            agent_session = AgentSession(
                self.store, session.id, Path(session.project), propose=params.propose, code_search=self.code_search
            )
            self.sessions[session.id] = agent_session
        try:
            agent_session.set_overlay(params.overlay or {})
        except CoveError as err:
            raise ProtocolError(f"agent/run: overlay: {err}", INVALID_PARAMS) from None
        run = self.runs[session.id] = Run()
        await asyncio.to_thread(self.store.append_message, session.id, "user", params.task)
        task = asyncio.create_task(asyncio.to_thread(self._work, client, config, agent_session, params, mode, run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"session_id": session.id, "started": True, "mode": mode.value}

    def _work(
        self,
        client: Any,
        config: CoveConfig,
        session: AgentSession,
        params: AgentRun,
        mode: ApprovalMode,
        run: Run,
    ) -> None:
        """The run, in a worker thread; whatever happens, it ends with a `finished` event."""

        def emit(event: AgentEvent) -> None:
            try:
                if event.type not in ("delta", "tool_start", "tool_output", "file_wanted"):  # kept whole, or not kept
                    self.store.append_message(session.session_id, *_transcript_entry(event))
            except CoveError as err:
                logger.warning("transcript not written: %s", err)
            self.deliver(client, event_params(session.session_id, event))

        def ask(kind: str, **data: Any) -> PlanDecision:
            request_id = next(self._ids)
            answered = threading.Event()
            answer: list[PlanDecision] = []
            run.pending[request_id] = (answered, answer)
            emit(DecisionNeeded(request_id, kind, **data))
            try:
                return answer[0] if run.wait(answered, DECISION_TIMEOUT_S) else PlanDecision(False)
            finally:
                run.pending.pop(request_id, None)

        def read_from_client(target: Path) -> str | None:
            request_id = next(self._ids)
            answered = threading.Event()
            answer: list[str | None] = []
            run.files[request_id] = (answered, answer)
            emit(FileWanted(request_id, session.file_tools.workspace.relative(target)))
            try:
                return answer[0] if run.wait(answered, FILE_TIMEOUT_S) else None
            finally:
                run.files.pop(request_id, None)

        session.file_tools.reader = read_from_client if params.client_files else None

        io = RunIO(
            on_event=emit,
            approve_tool=lambda tool, arguments: (
                (params.propose and tool in PROPOSED_TOOLS) or ask("tool", tool=tool, arguments=arguments).approved
            ),
            approve_plan=lambda plan: ask("plan", text=plan),
            cancelled=run.cancel.is_set,
            inbox=run.drain,
        )
        finished = Finished("error", error="internal error: the run stopped")
        try:
            local = self.local_model(config)
            result = run_task(config, session, params.task, io, Models(config, local), mode, params.read_only)
            changes = session.changes() if params.propose else None
            finished = Finished(result.stopped, result.answer, result.steps, changes=changes)
        except CoveError as err:
            finished = Finished("error", error=str(err))
        except Exception as err:  # a bug ends the run, never the daemon
            logger.exception("agent run failed")
            finished = Finished("error", error=f"internal error: {err}")
        finally:
            run.done = True  # before the client hears of the end: an undo sent on `finished` finds the run over
            emit(finished)

    async def _decide(self, client: Any, params: AgentDecide) -> dict[str, Any]:
        run = self.runs.get(params.session_id)
        if run is None or run.done:
            raise ProtocolError(f"session {params.session_id!r} has no run in progress", INVALID_PARAMS)
        run.decide(params.request_id, PlanDecision(params.approve, params.feedback))
        return {"request_id": params.request_id, "approved": params.approve}

    async def _file(self, client: Any, params: AgentFile) -> dict[str, Any]:
        run = self.runs.get(params.session_id)
        if run is None or run.done:
            raise ProtocolError(f"session {params.session_id!r} has no run in progress", INVALID_PARAMS)
        run.provide(params.request_id, params.text)
        return {"request_id": params.request_id}

    async def _cancel(self, client: Any, params: AgentCancel) -> dict[str, Any]:
        run = self.runs.get(params.session_id)
        if run is None or run.done:
            return {"cancelled": False}
        run.cancel.set()
        return {"cancelled": True}

    async def _undo(self, client: Any, params: AgentUndo) -> dict[str, Any]:
        run = self.runs.get(params.session_id)
        if run is not None and not run.done:
            raise ProtocolError("the agent is still working in this session; cancel the run first", INVALID_PARAMS)
        session = self.sessions.get(params.session_id)
        if session is None:
            raise ProtocolError("the agent has changed no file in this session", INVALID_PARAMS)
        try:
            text = await asyncio.to_thread(session.file_tools.undo)
        except ToolError as err:
            raise ProtocolError(str(err), INVALID_PARAMS) from None
        await asyncio.to_thread(self.store.append_message, params.session_id, "event", f"undo: {text}")
        return {"text": text}


def run_config(project: Path, params: AgentRun) -> CoveConfig:
    """The settings of a run: the project's layers (files, the daemon's environment), then the settings of the
    editor that started it, then the run's own options (mode, plan_first, max_steps); each layer checked."""
    try:
        config = load_config(project, os.environ, params.settings).config
        options = {"mode": params.mode, "plan_first": params.plan_first, "max_steps": params.max_steps}
        chosen = {key: value for key, value in options.items() if value is not None}
        return apply_layer(config, {"agent": chosen}, "agent/run") if chosen else config
    except ConfigError as err:
        raise ProtocolError(f"agent/run: {err}", INVALID_PARAMS) from None


def _transcript_entry(event: AgentEvent) -> tuple[str, str]:
    """How an event is kept in the session's transcript: (role, content)."""
    if isinstance(event, AssistantReply):
        calls = f"\n(calls: {', '.join(event.calls)})" if event.calls else ""
        return "assistant", f"{event.text}{calls}"
    if isinstance(event, ToolCalled):
        arguments = json.dumps(event.arguments, ensure_ascii=False)[:500]
        return "tool", f"{event.tool}({arguments})\n{event.output[:4000]}"
    if isinstance(event, ReminderShown):
        return "user", f'<system-reminder type="{event.reminder}" level="{event.level}">{event.text}</system-reminder>'
    if isinstance(event, PlanWritten):
        return "plan", event.text
    return "event", json.dumps({"type": event.type, **unstructure(event)}, ensure_ascii=False)[:4000]
