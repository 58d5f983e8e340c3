"""User hooks: shell commands from config run before and after tools, compactions, and at session start and end.

Each hook gets the event as JSON on stdin and `COVE_HOOK=<point>` in its environment. A `before_tool` hook that
exits non-zero blocks the call (its stderr is the reason the agent and the user see); other hooks only observe, and
their failures are reported, not fatal.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cove.agent.safety import ToolDenied
from cove.config import HooksConfig
from cove.protocol.events import AgentEvent, HookFailed

HookPoint = Literal[
    "before_tool", "after_tool", "before_compaction", "after_compaction", "session_start", "session_end"
]


@dataclass(frozen=True)
class HookResult:
    """How a hook ended; `ran` is false when none is configured for the point."""

    ran: bool
    status: int = 0
    output: str = ""


def run_hook(config: HooksConfig, point: HookPoint, event: dict[str, Any], cwd: Path) -> HookResult:
    """Run the hook configured for `point`, if any; a blocking `before_tool` hook raises ToolDenied."""
    command: str = getattr(config, point)
    if not command:
        return HookResult(ran=False)
    env = dict(os.environ, COVE_HOOK=point)
    try:
        done = subprocess.run(
            ["bash", "-c", command],
            input=json.dumps({"hook": point, **event}),
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=config.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        result = HookResult(True, -1, f"hook {point} timed out after {config.timeout_s} s")
    else:
        result = HookResult(True, done.returncode, (done.stderr or done.stdout).strip()[:2000])
    if point == "before_tool" and result.status != 0:
        reason = result.output or f"exit status {result.status}"
        raise ToolDenied(reason, refuser="the before_tool hook")
    return result


def observe_hook(
    config: HooksConfig, point: HookPoint, event: dict[str, Any], cwd: Path, on_event: Callable[[AgentEvent], None]
) -> HookResult:
    """Run the hook for `point` as `run_hook` does, and report its failure (a non-zero exit, a time-out) to the
    run's events and so its transcript: the run goes on, the user sees why the hook failed."""
    result = run_hook(config, point, event, cwd)
    if result.ran and result.status != 0:
        on_event(HookFailed(point, result.status, result.output))
    return result
