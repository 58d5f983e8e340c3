"""Agent runs inside the daemon: `agent/run` starts one in a worker thread, its transcript streams to the client
as `agent/event` notifications (and is written to the session), and the user's decisions come back through
`agent/decide`. `agent/cancel` stops a run between steps; `agent/undo` reverts the session's last file change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cove.agent.file_tools import ToolError
from cove.agent.messages import AgentDecision, AgentRunParams, SessionRef
from cove.agent.protocol import INVALID_PARAMS, ProtocolError, Request, parse_params
from cove.agent.reminders import Event
from cove.agent.runner import AgentSession, Models, PlanDecision, RunIO, SharedLocalModel, run_task
from cove.agent.safety import ApprovalMode
from cove.agent.store import MemoryStore
from cove.config import CoveConfig, ModelConfig, load_config
from cove.errors import CoveError

logger = logging.getLogger(__name__)

#: Seconds a run waits for the user's decision on a tool call or a plan before taking it as a refusal.
DECISION_TIMEOUT_S = 900.0

#: Tools whose changes, in a `propose` run, are only proposals (the user reviews them in the editor): not asked.
PROPOSED_TOOLS = frozenset({"edit_file", "write_file", "undo"})

Deliver = Callable[[Any, dict[str, Any]], None]


class Run:
    """A run in progress: its pending decisions, its cancellation flag, and events from the editor for it."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.pending: dict[int, tuple[threading.Event, list[PlanDecision]]] = {}
        self.done = False

    def decide(self, request_id: int, decision: PlanDecision) -> None:
        waiting = self.pending.get(request_id)
        if waiting is None:
            raise ProtocolError(f"no decision {request_id} is pending in this run", INVALID_PARAMS)
        waiting[1].append(decision)
        waiting[0].set()

    def drain(self) -> list[Event]:
        events: list[Event] = []
        while not self.inbox.empty():
            events.append(self.inbox.get_nowait())
        return events


class AgentService:
    """The daemon's agent methods. `deliver(client, params)` sends an `agent/event` to the run's client and to
    every subscriber, from any thread."""

    def __init__(self, store: MemoryStore, deliver: Deliver) -> None:
        self.store = store
        self.deliver = deliver
        self._locals: dict[ModelConfig, SharedLocalModel] = {}
        self.sessions: dict[str, AgentSession] = {}
        self.runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def methods(self) -> dict[str, Callable[[Any, Request], Awaitable[Any]]]:
        return {
            "agent/run": self._run,
            "agent/decide": self._decide,
            "agent/cancel": self._cancel,
            "agent/undo": self._undo,
        }

    def active(self) -> bool:
        """Whether any run is in progress."""
        return any(not run.done for run in self.runs.values())

    def inbox(self, session_id: str) -> queue.SimpleQueue[Event] | None:
        """Where editor events for a session go while it has a run in progress (else None)."""
        run = self.runs.get(session_id)
        return run.inbox if run is not None and not run.done else None

    async def _run(self, client: Any, request: Request) -> dict[str, Any]:
        params = parse_params(AgentRunParams, request.params, request.method)
        session = await asyncio.to_thread(self.store.session, params.session_id)
        if params.session_id in self.runs and not self.runs[params.session_id].done:
            raise ProtocolError("this session already has a run in progress; agent/cancel stops it", INVALID_PARAMS)
        config = (await asyncio.to_thread(load_config, Path(session.project))).config
        if params.plan_first is not None:
            config = dataclasses.replace(config, agent=dataclasses.replace(config.agent, plan_first=params.plan_first))
        try:
            mode = ApprovalMode(params.mode or config.agent.mode)
        except ValueError:
            raise ProtocolError(f"agent/run: unknown mode {params.mode!r}", INVALID_PARAMS) from None
        if not params.task.strip():
            raise ProtocolError("agent/run: the task is empty", INVALID_PARAMS)
        agent_session = self.sessions.get(session.id)
        if agent_session is None or agent_session.propose != params.propose:
            agent_session = AgentSession(self.store, session.id, Path(session.project), propose=params.propose)
            self.sessions[session.id] = agent_session
        overlay = params.overlay or {}
        if not all(isinstance(text, str) for text in overlay.values()):
            raise ProtocolError("agent/run: overlay maps paths to texts", INVALID_PARAMS)
        try:
            agent_session.set_overlay(overlay)
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
        params: AgentRunParams,
        mode: ApprovalMode,
        run: Run,
    ) -> None:
        """The run, in a worker thread; whatever happens, it ends with a `finished` event."""

        def emit(kind: str, data: dict[str, Any]) -> None:
            try:
                if kind != "delta":  # pieces of a reply are streamed; the transcript keeps the whole reply
                    self.store.append_message(session.session_id, *_transcript_entry(kind, data))
            except CoveError as err:
                logger.warning("transcript not written: %s", err)
            self.deliver(client, {"session_id": session.session_id, "type": kind, **data})

        def ask(kind: str, data: dict[str, Any]) -> PlanDecision:
            request_id = next(self._ids)
            answered = threading.Event()
            answer: list[PlanDecision] = []
            run.pending[request_id] = (answered, answer)
            emit("decision", {"request_id": request_id, "kind": kind, **data})
            deadline = time.monotonic() + DECISION_TIMEOUT_S
            try:
                while not answered.wait(0.2):
                    if run.cancel.is_set() or time.monotonic() > deadline:
                        return PlanDecision(False)
            finally:
                run.pending.pop(request_id, None)
            return answer[0]

        io = RunIO(
            on_event=emit,
            approve_tool=lambda tool, arguments: (
                (params.propose and tool in PROPOSED_TOOLS)
                or ask("tool", {"tool": tool, "arguments": arguments}).approved
            ),
            approve_plan=lambda plan: ask("plan", {"text": plan}),
            cancelled=run.cancel.is_set,
            inbox=run.drain,
        )
        try:
            local = self._locals.setdefault(config.model, SharedLocalModel.for_model(config.model))
            result = run_task(config, session, params.task, io, Models(config, local), mode, params.read_only)
            changes = {"changes": session.changes()} if params.propose else {}
            emit("finished", {"stopped": result.stopped, "answer": result.answer, "steps": result.steps, **changes})
        except CoveError as err:
            emit("finished", {"stopped": "error", "answer": "", "steps": 0, "error": str(err)})
        except Exception as err:  # a bug ends the run, never the daemon
            logger.exception("agent run failed")
            emit("finished", {"stopped": "error", "answer": "", "steps": 0, "error": f"internal error: {err}"})
        finally:
            run.done = True

    async def _decide(self, client: Any, request: Request) -> dict[str, Any]:
        params = parse_params(AgentDecision, request.params, request.method)
        run = self.runs.get(params.session_id)
        if run is None or run.done:
            raise ProtocolError(f"session {params.session_id!r} has no run in progress", INVALID_PARAMS)
        run.decide(params.request_id, PlanDecision(params.approve, params.feedback))
        return {"request_id": params.request_id, "approved": params.approve}

    async def _cancel(self, client: Any, request: Request) -> dict[str, Any]:
        params = parse_params(SessionRef, request.params, request.method)
        run = self.runs.get(params.session_id)
        if run is None or run.done:
            return {"cancelled": False}
        run.cancel.set()
        return {"cancelled": True}

    async def _undo(self, client: Any, request: Request) -> dict[str, Any]:
        params = parse_params(SessionRef, request.params, request.method)
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


def _transcript_entry(kind: str, data: dict[str, Any]) -> tuple[str, str]:
    """How an event is kept in the session's transcript: (role, content)."""
    if kind == "assistant":
        calls = f"\n(calls: {', '.join(data['calls'])})" if data.get("calls") else ""
        return "assistant", f"{data['text']}{calls}"
    if kind == "tool":
        arguments = json.dumps(data["arguments"], ensure_ascii=False)[:500]
        return "tool", f"{data['tool']}({arguments})\n{str(data['output'])[:4000]}"
    if kind == "reminder":
        return (
            "user",
            f'<system-reminder type="{data["reminder"]}" level="{data["level"]}">{data["text"]}</system-reminder>',
        )
    if kind == "plan":
        return "plan", str(data["text"])
    return "event", json.dumps({"type": kind, **data}, ensure_ascii=False)[:4000]
