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
from typing import Any

from cove.config import find_project_root, load_config
from cove.daemon_client import DaemonClient, ensure_daemon
from cove.errors import InputError
from cove.runtime import daemon_paths

#: How each run ending maps to the exit status: 0 only when the task was done.
FINISHED_OK = "answered"


def cmd_agent(args: argparse.Namespace) -> int:
    """Run a task with the agent in the current project, through the daemon, streaming the transcript."""
    root = find_project_root(Path.cwd()) or Path.cwd()
    load_config(root)  # a broken config fails here, with the file and key, before the daemon is involved
    with ensure_daemon(daemon_paths()) as client:
        client.set_timeout(None)  # a model call may take long; the daemon's events say it is alive
        session = client.call("session/create", {"project": str(root), "title": args.task[:80]})
        params: dict[str, Any] = {"session_id": session["id"], "task": args.task}
        if args.mode:
            params["mode"] = args.mode
        if args.no_plan:
            params["plan_first"] = False
        started = client.call("agent/run", params)
        print(f"[session {session['id'][:8]}, mode {started['mode']}]", file=sys.stderr)
        return follow(client, session["id"], ask_terminal, TerminalView().show)


def cmd_undo(args: argparse.Namespace) -> int:
    """Revert the agent's last file change in this project's most recent session (again: the one before)."""
    root = find_project_root(Path.cwd()) or Path.cwd()
    with ensure_daemon(daemon_paths()) as client:
        sessions = client.call("session/list", {"project": str(root)})
        if not sessions:
            raise InputError(f"no agent session in {root}; nothing to undo")
        print(client.call("agent/undo", {"session_id": sessions[0]["id"]})["text"])
    return 0


def follow(
    client: DaemonClient,
    session_id: str,
    ask: Callable[[dict[str, Any]], tuple[bool, str]],
    on_event: Callable[[dict[str, Any]], None],
) -> int:
    """Hand the run's events to `on_event` until it finishes; answer its decisions with `ask`. Returns the exit
    status."""
    requests = 0
    while True:
        try:
            message = client.notifications.pop(0) if client.notifications else client.receive()
            if message.get("method") != "agent/event" or message["params"].get("session_id") != session_id:
                continue  # responses to our agent/decide requests, other sessions' events
            event = message["params"]
            on_event(event)
            if event["type"] == "decision":
                approve, feedback = ask(event)
                requests += 1
                decision: dict[str, Any] = {"session_id": session_id, "request_id": event["request_id"]}
                decision |= {"approve": approve, "feedback": feedback}
                client.send(
                    {"jsonrpc": "2.0", "id": f"decide-{requests}", "method": "agent/decide", "params": decision}
                )
            if event["type"] == "finished":
                return 0 if event["stopped"] == FINISHED_OK else 1
        except KeyboardInterrupt:
            print("\n[cancelling: the run stops after the current step]", file=sys.stderr)
            client.send(
                {"jsonrpc": "2.0", "id": "cancel", "method": "agent/cancel", "params": {"session_id": session_id}}
            )


class TerminalView:
    """Events as terminal lines: the conversation on stdout (streamed as it comes), the bookkeeping on stderr."""

    def __init__(self) -> None:
        self.streaming = False

    def show(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "delta":
            print(event["text"] if self.streaming else f"cove: {event['text']}", end="", flush=True)
            self.streaming = True
            return
        if kind == "assistant":
            if self.streaming:
                print(flush=True)
            elif event["text"]:
                print(f"cove: {event['text']}", flush=True)
            self.streaming = False
        elif kind == "tool":
            status = f"  ! {event['error']}" if event["error"] else ""
            print(f"  -> {event['tool']}({json.dumps(event['arguments'])[:100]}){status}", flush=True)
        elif kind in ("reminder", "compaction", "warning"):
            print(f"  [{kind}] {event['text']}", flush=True)
        elif kind == "plan":
            print(f"plan:\n{event['text']}", flush=True)
        elif kind == "todos":
            print(f"todos ({event['open']} open):\n{event['text']}", flush=True)
        elif kind == "route":
            print(f"[{event['text']}]", file=sys.stderr, flush=True)
        elif kind == "finished":
            error = f": {event['error']}" if event.get("error") else ""
            print(f"[{event['stopped']} after {event['steps']} steps{error}]", file=sys.stderr, flush=True)


def ask_terminal(event: dict[str, Any]) -> tuple[bool, str]:
    """The user's decision, asked on the terminal; no terminal means no."""
    if not sys.stdin.isatty():
        print("  [no terminal to ask: refused]", file=sys.stderr)
        return False, ""
    if event["kind"] == "plan":
        answer = input("approve this plan? [y/N, or type what to change] ").strip()
        if answer.lower() in ("y", "yes"):
            return True, ""
        return False, "" if answer.lower() in ("", "n", "no") else answer
    answer = input(f"allow {event['tool']}({json.dumps(event['arguments'])[:200]})? [y/N] ")
    return answer.strip().lower() in ("y", "yes"), ""
