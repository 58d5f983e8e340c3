"""Hooks run as real shell commands with the event on stdin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cove.agent.hooks import run_hook
from cove.agent.safety import ToolDenied
from cove.config import HooksConfig


def test_no_hook_configured_runs_nothing(tmp_path: Path) -> None:
    assert run_hook(HooksConfig(), "after_tool", {}, tmp_path).ran is False


def test_before_tool_can_block_a_call_with_its_reason(tmp_path: Path) -> None:
    hook = "grep -q deploy && { echo 'no deploys from the agent' >&2; exit 1; } || exit 0"
    config = HooksConfig(before_tool=hook)
    assert run_hook(config, "before_tool", {"tool": "run_command", "arguments": {"command": "pytest"}}, tmp_path).ran
    with pytest.raises(ToolDenied, match="no deploys from the agent"):
        run_hook(config, "before_tool", {"tool": "run_command", "arguments": {"command": "make deploy"}}, tmp_path)


def test_observing_hooks_get_the_event_and_failures_are_reported(tmp_path: Path) -> None:
    config = HooksConfig(after_tool='cat > "events-$COVE_HOOK.json"', session_end="exit 3", timeout_s=1)
    run_hook(config, "after_tool", {"tool": "edit_file", "output": "ok"}, tmp_path)
    event = json.loads((tmp_path / "events-after_tool.json").read_text())
    assert event == {"hook": "after_tool", "tool": "edit_file", "output": "ok"}
    assert run_hook(config, "session_end", {}, tmp_path).status == 3
    slow = HooksConfig(session_start="sleep 5", timeout_s=1)
    assert "timed out" in run_hook(slow, "session_start", {}, tmp_path).output
