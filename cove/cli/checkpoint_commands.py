"""`cove checkpoints` and `cove undo [--to N]`: the workspace's checkpoints (agent/checkpoints.py), through the
daemon's `checkpoint/list` and `checkpoint/restore`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cove.config import find_project_root
from cove.daemon_client import ensure_daemon
from cove.protocol.params import CheckpointList, CheckpointRestore
from cove.runtime import daemon_paths


def _project() -> str:
    return str((find_project_root(Path.cwd()) or Path.cwd()).resolve())


def cmd_checkpoints(args: argparse.Namespace) -> int:
    """List this project's checkpoints: number, time, the step and tool they were taken before, what changed."""
    with ensure_daemon(daemon_paths()) as client:
        checkpoints = client.call(CheckpointList(_project()))["checkpoints"]
    if not checkpoints:
        print("no checkpoints: the agent has not changed anything in this project yet")
    for checkpoint in checkpoints:
        print(_line(checkpoint))
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    """Undo the agent's last step (again: the one before), or restore checkpoint `--to N`."""
    with ensure_daemon(daemon_paths()) as client:
        result = client.call(CheckpointRestore(_project(), args.to))
    restored, before = result["restored"], result["before"]
    print(f"restored checkpoint {restored['number']}: {_line(restored)}")
    if before is not None:
        print(f"the files as they were just now are checkpoint {before['number']}: `cove undo --to {before['number']}`")
    return 0


def _line(checkpoint: dict[str, Any]) -> str:
    when = checkpoint["when"].replace("T", " ")[:19]
    if checkpoint["session"] == "restore":
        origin = checkpoint["tool"]
    else:
        origin = f"before step {checkpoint['step']} ({checkpoint['tool']}) of session {checkpoint['session'][:8]}"
    changed = ", ".join(checkpoint["changed"][:6]) + (" ..." if len(checkpoint["changed"]) > 6 else "")
    left_out = f"; left out (too large): {', '.join(checkpoint['left_out'])}" if checkpoint["left_out"] else ""
    return f"{checkpoint['number']:>3}  {when}  {origin}: {changed or 'no change'}{left_out}"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`cove checkpoints`, `cove undo [--to N]`."""
    listing = sub.add_parser("checkpoints", help="the checkpoints taken before each step of the agent that may write")
    listing.set_defaults(run=cmd_checkpoints)
    undo = sub.add_parser("undo", help="undo the agent's last step here, commands too (again: the one before)")
    undo.add_argument("--to", type=int, metavar="N", help="restore checkpoint N instead (see `cove checkpoints`)")
    undo.set_defaults(run=cmd_undo)
