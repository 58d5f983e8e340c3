"""run_command with real processes in a temporary workspace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cove.agent.command_tool import run_command
from cove.agent.file_tools import ToolError
from cove.agent.safety import ToolDenied, Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "repo" / "sub").mkdir(parents=True)
    return Workspace.at(tmp_path / "repo")


def test_runs_in_the_workspace_and_reports_status(workspace: Workspace) -> None:
    out = run_command(workspace, "pwd; echo oops >&2; exit 3", cwd="sub")
    assert out.startswith("exit status 3 (not sandboxed)\n")
    assert str(workspace.root / "sub") in out and "oops" in out


def test_output_is_capped_head_and_tail(workspace: Workspace) -> None:
    out = run_command(workspace, "seq 1 100000", max_output=1000)
    assert "characters cut" in out and out.split("\n")[1] == "1" and out.rstrip().endswith("100000")


def test_timeout_kills_the_whole_process_group(workspace: Workspace) -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0\.5 s"):
        run_command(workspace, "sleep 30 & sleep 30", timeout_s=0.5)
    assert time.monotonic() - started < 10


def test_deny_patterns_and_confinement(workspace: Workspace) -> None:
    with pytest.raises(ToolDenied, match="no approval mode allows it"):
        run_command(workspace, "sudo true")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        run_command(workspace, "ls", cwd="..")
