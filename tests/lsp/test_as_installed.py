"""The defaults tier: Cove exactly as installed — no time-budget, routing or index override (the rest of the suite
sets them for determinism, tests/conftest.py's `clean_env`) — through the real `cove lsp` and the daemon it starts.

Suggestions come from the daemon's model within the default 300 ms budget; the stop reasons `rule`, `time` and
`tokens` each occur where they must; a project's `.cove/config.toml` applies; the project's index is built in the
daemon and used by completions."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from cove.daemon_client import DaemonClient
from cove.errors import DaemonError, DaemonUnavailable
from cove.runtime import daemon_paths
from tests.conftest import ARGPARSE, find_line
from tests.lsp.harness import cove_server, inline_params, open_file
from tests.lsp.test_server_backend import status_of

pytestmark = pytest.mark.model

#: What the rest of the suite overrides; none of it here.
OVERRIDES = (
    "COVE_COMPLETION_TIME_BUDGET_MS",
    "COVE_COMPLETION_BLOCK_TIME_BUDGET_MS",
    "COVE_ROUTING_COMPLETE",
    "COVE_INDEX_ENABLED",
)

#: A line the model goes on writing for well over 300 ms (a long list on one line).
LONG_LINE = 'NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", '


@pytest.fixture
def installed_env(agent_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The user's environment with nothing of Cove's set: a daemon of the test's own (its runtime folder)."""
    env = {key: value for key, value in agent_env.items() if key not in OVERRIDES}
    assert not [key for key in env if key.startswith("COVE_")], env
    yield env


def project(tmp_path: Path, settings: str = "") -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    shutil.copy(ARGPARSE, root / "argparse_copy.py")
    (root / "names.py").write_text(f"{LONG_LINE}\n")
    if settings:
        (root / ".cove").mkdir()
        (root / ".cove" / "config.toml").write_text(settings)
    return root


async def indexed(env: dict[str, str], root: Path, name: str) -> list[Any]:
    """The definitions of `name` in the daemon's index of `root`, once the language server has had it built (30 s at
    most; a small project may be built before any progress is reported)."""
    for _ in range(600):
        try:
            with DaemonClient(daemon_paths(env).socket) as client:
                found: list[Any] = client.request("index/definitions", {"root": str(root), "names": [name]})
            if found:
                return found
        except (DaemonUnavailable, DaemonError, OSError):
            pass  # not started yet, or the index not opened yet
        await asyncio.sleep(0.05)
    return []


async def suggestion(lsp: Any, uri: str, line: int, character: int) -> str:
    reply = await lsp.text_document_inline_completion_async(inline_params(uri, line, character))
    items = reply.items if isinstance(reply, types.InlineCompletionList) else (reply or [])
    return str(items[0].insert_text) if items else ""


async def test_suggestions_as_installed_come_from_the_daemon_and_stop_by_rule_or_time(
    tmp_path: Path, installed_env: dict[str, str]
) -> None:
    root = project(tmp_path, "[completion]\nmax_tokens = 400\n")  # a project's setting: only time can stop a line
    async with cove_server(installed_env, root=root) as (lsp, _):
        uri, text = open_file(lsp, root / "argparse_copy.py")
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        ended = await suggestion(lsp, uri, line, column + len("seen_non_default_actions."))
        status = await status_of(lsp)
        assert ended == "add(action)", ended
        assert (status["answered_last"], status["last_stop"]) == ("daemon", "rule"), status
        assert status["serving"].startswith("the Cove daemon's model"), status
        names, _ = open_file(lsp, root / "names.py")
        long = await suggestion(lsp, names, 0, len(LONG_LINE))
        status = await status_of(lsp)
        assert long and status["last_stop"] == "time", (long, status)


async def test_a_projects_token_limit_applies_under_the_default_budget(
    tmp_path: Path, installed_env: dict[str, str]
) -> None:
    root = project(tmp_path, "[completion]\nmax_tokens = 2\n")
    async with cove_server(installed_env, root=root) as (lsp, _):
        names, _ = open_file(lsp, root / "names.py")
        short = await suggestion(lsp, names, 0, len(LONG_LINE))
        status = await status_of(lsp)
        assert short and status["last_stop"] == "tokens" and status["answered_last"] == "daemon", (short, status)
        assert len(short) < 20, short


async def test_the_projects_index_is_built_in_the_daemon_and_gives_completions_context(
    tmp_path: Path, installed_env: dict[str, str]
) -> None:
    root = project(tmp_path)
    (root / "shapes.py").write_text("def polygon_area(corners: list[tuple[float, float]]) -> float:\n    return 0.0\n")
    async with cove_server(installed_env, client="visual-studio-code", root=root) as (lsp, _):
        assert await indexed(installed_env, root, "polygon_area"), "the daemon's index of the project has it"
        text = "total = polygon_area(\n"
        uri, _ = open_file(lsp, root / "use.py", text)
        shown: Any = {}
        for _ in range(600):  # the definitions of a new window's names are asked of the daemon in the background
            shown = await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    "cove.showContext", [uri, {"line": 0, "character": len("total = polygon_area(")}]
                )
            )
            if shown["context"]:
                break
            await asyncio.sleep(0.05)
        assert "def polygon_area(corners: list[tuple[float, float]]) -> float:" in shown["context"], shown
