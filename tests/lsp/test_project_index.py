"""The project's code index through the real server and a real daemon: the build shown as `$/progress`, a save
indexed at once, and `[index] enabled = false` asking nothing of the daemon."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pip._vendor.rich as rich
from lsprotocol import types

from cove.daemon_client import DaemonClient
from cove.runtime import daemon_paths
from tests.lsp.harness import cove_server, open_file


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    shutil.copytree(Path(rich.__file__).parent, root / "rich", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def index_reports(lsp: Any) -> list[Any]:
    for reports in lsp.progress_reports.values():
        if reports and isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].title == "Cove index":
            return list(reports)
    return []


async def index_built(lsp: Any) -> list[Any]:
    """The index's `$/progress` reports once the build has ended (30 s at most)."""
    for _ in range(600):
        reports = index_reports(lsp)
        if reports and isinstance(reports[-1], types.WorkDoneProgressEnd):
            break
        await asyncio.sleep(0.05)
    return reports


async def test_the_build_is_shown_and_a_save_is_indexed(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = project(tmp_path)
    env = dict(agent_env, COVE_INDEX_ENABLED="true")
    async with cove_server(env, client="visual-studio-code", root=root) as (lsp, _):
        begin, *_, end = await index_built(lsp)
        assert begin.message == "indexing project"
        files = len(list(root.rglob("*.py")))
        assert end.message.startswith(f"indexed: {files} files, ")
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status"))
        assert status["index"]["state"] == "ready" and status["index"]["files"] == files, status["index"]
        path = root / "rich" / "added.py"
        path.write_text("def fresh_helper(width: int) -> int:\n    return width\n")
        uri, _ = open_file(lsp, path)
        lsp.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
        with DaemonClient(daemon_paths(env).socket) as client:
            for _ in range(100):
                if client.request("index/definitions", {"root": str(root), "names": ["fresh_helper"]}):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the saved file was not indexed")


async def test_turned_off_nothing_is_indexed(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = project(tmp_path)
    async with cove_server(agent_env, client="visual-studio-code", root=root) as (lsp, _):  # COVE_INDEX_ENABLED=false
        # `initialized` has been handled once a later request is answered: it decided about the index.
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status"))
        assert status["index"] == {"state": "off"}
        assert index_reports(lsp) == []
        assert not daemon_paths(agent_env).socket.exists()  # no daemon was started for it


async def test_completions_get_the_neighbours_of_their_window(tmp_path: Path, agent_env: dict[str, str]) -> None:
    """With the index built, the context of a window holds the chunk of another file most like it (BM25, asked of
    the daemon once per window anchor); `cove.showContext` shows it."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "retry.py").write_text(
        "def backoff_delays(base: float, attempts: int) -> list[float]:\n"
        "    return [base * 2**n for n in range(attempts)]\n"
    )
    (root / "shapes.py").write_text("def area(width, height):\n    return width * height\n")
    text = "import time\n\n\ndef fetch(session, url):\n    for delay in backoff_delays(0.5, 4):\n"
    text += "        time.sleep(delay)\n"
    env = dict(agent_env, COVE_INDEX_ENABLED="true", COVE_COMPLETION_CONTEXT_SOURCES='["neighbours"]')
    async with cove_server(env, client="visual-studio-code", root=root) as (lsp, _):
        await index_built(lsp)
        uri, _ = open_file(lsp, root / "client.py", text)
        shown: Any = {}
        for _ in range(100):
            shown = await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams("cove.showContext", [uri, {"line": 6, "character": 0}])
            )
            if shown["context"]:
                break
            await asyncio.sleep(0.05)
    assert shown["context"].startswith("# retry.py\ndef backoff_delays(base: float, attempts: int) -> list[float]:")
    assert "area" not in shown["context"]
