"""`cove agent "TASK"`: a run in the daemon, its transcript streamed to the terminal, decisions asked there.

Without a terminal to ask, every decision is a refusal (use --mode full-auto to approve everything). Ctrl-C asks
the daemon to cancel the run and waits for it to stop.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from cove.config import find_project_root, load_config
from cove.daemon_client import DaemonClient, ensure_daemon
from cove.errors import CoveError
from cove.inference.model.fitness import check_agent
from cove.protocol.events import (
    METHOD,
    AgentEvent,
    AssistantReply,
    Compacted,
    DecisionNeeded,
    Delta,
    Finished,
    PlanWritten,
    ReminderShown,
    RouteChosen,
    RunWarning,
    TodosChanged,
    ToolCalled,
    parse_event,
)
from cove.protocol.params import AgentCancel, AgentDecide, AgentRun, SessionCreate
from cove.runtime import daemon_paths

#: How each run ending maps to the exit status: 0 only when the task was done.
FINISHED_OK = "answered"


def cmd_agent(args: argparse.Namespace) -> int:
    """Run a task with the agent in the current project, through the daemon, streaming the transcript."""
    root = find_project_root(Path.cwd()) or Path.cwd()
    loaded = load_config(root)  # a broken config fails here, with the file and key, before the daemon is involved
    fitness = check_agent(loaded.config)
    if not fitness.fit:  # a run that could only answer "..." is not started
        print(f"cove agent: {fitness.reason}.\nTo run the agent, {fitness.hint}.", file=sys.stderr)
        return 2
    with ensure_daemon(daemon_paths()) as client:
        client.set_timeout(None)  # a model call may take long; the daemon's events say it is alive
        session = client.call(SessionCreate(str(root), args.task[:80]))
        run = AgentRun(
            session["id"],
            args.task,
            mode=args.mode,
            plan_first=False if args.no_plan else None,
            max_steps=args.max_steps,
        )
        started = client.call(run)
        print(f"[session {session['id'][:8]}, mode {started['mode']}]", file=sys.stderr)
        return follow(client, session["id"], ask_terminal, TerminalView().show)


def follow(
    client: DaemonClient,
    session_id: str,
    ask: Callable[[DecisionNeeded], tuple[bool, str]],
    on_event: Callable[[AgentEvent], None],
) -> int:
    """Hand the run's events to `on_event` until it finishes; answer its decisions with `ask`. Returns the exit
    status."""
    while True:
        try:
            message = client.notifications.pop(0) if client.notifications else client.receive()
            if message.get("method") != METHOD:
                continue  # responses to our agent/decide requests
            try:
                session, event = parse_event(message.get("params"))
            except CoveError as err:
                print(f"  [an event was not understood: {err}]", file=sys.stderr)
                continue
            if session != session_id:
                continue  # other sessions' events
            on_event(event)
            if isinstance(event, DecisionNeeded):
                approve, feedback = ask(event)
                client.send_request(AgentDecide(session_id, event.request_id, approve, feedback))
            if isinstance(event, Finished):
                return 0 if event.stopped == FINISHED_OK else 1
        except KeyboardInterrupt:
            print("\n[cancelling: the run stops after the current step]", file=sys.stderr)
            client.send_request(AgentCancel(session_id))


class TerminalView:
    """Events as terminal lines: the conversation on stdout (streamed as it comes), the bookkeeping on stderr."""

    def __init__(self) -> None:
        self.streaming = False

    def show(self, event: AgentEvent) -> None:
        if isinstance(event, Delta):
            print(event.text if self.streaming else f"cove: {event.text}", end="", flush=True)
            self.streaming = True
            return
        if isinstance(event, AssistantReply):
            if self.streaming:
                print(flush=True)
            elif event.text:
                print(f"cove: {event.text}", flush=True)
            self.streaming = False
        elif isinstance(event, ToolCalled):
            status = f"  ! {event.error}" if event.error else ""
            print(f"  -> {event.tool}({json.dumps(event.arguments)[:100]}){status}", flush=True)
        elif isinstance(event, ReminderShown | Compacted | RunWarning):
            print(f"  [{event.type}] {event.text}", flush=True)
        elif isinstance(event, PlanWritten):
            print(f"plan:\n{event.text}", flush=True)
        elif isinstance(event, TodosChanged):
            print(f"todos ({event.open} open):\n{event.text}", flush=True)
        elif isinstance(event, RouteChosen):
            print(f"[{event.text}]", file=sys.stderr, flush=True)
        elif isinstance(event, Finished):
            error = f": {event.error}" if event.error else ""
            print(f"[{event.stopped} after {event.steps} steps{error}]", file=sys.stderr, flush=True)


def ask_terminal(event: DecisionNeeded) -> tuple[bool, str]:
    """The user's decision, asked on the terminal; no terminal means no."""
    if not sys.stdin.isatty():
        print("  [no terminal to ask: refused]", file=sys.stderr)
        return False, ""
    if event.kind == "plan":
        answer = input("approve this plan? [y/N, or type what to change] ").strip()
        if answer.lower() in ("y", "yes"):
            return True, ""
        return False, "" if answer.lower() in ("", "n", "no") else answer
    answer = input(f"allow {event.tool}({json.dumps(event.arguments)[:200]})? [y/N] ")
    return answer.strip().lower() in ("y", "yes"), ""
