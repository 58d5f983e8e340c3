"""The settings an editor sends reach the agent runs it starts, and take effect there: tested by what the run does,
through the real `cove lsp`, the real daemon, and the scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.agent.test_loop import repository
from tests.lsp.harness import cove_server
from tests.lsp.test_agent_actions import Editor, call
from tests.scripted.openai_server import completion, executor_requests, scripted_openai_server

FIX = call("edit_file", path="calc.py", old_text="a - b", new_text="a + b")


async def run_task(lsp: Any, task: str) -> Any:
    return await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.agent", [task]))


async def test_mode_remote_url_and_model_from_the_editor_take_effect_without_a_restart(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    root = repository(tmp_path)
    script = [FIX, completion("Refused, so nothing changed."), FIX, completion("Fixed.")]
    with scripted_openai_server(script) as server:
        # No COVE_REMOTE_* in the environment and no config file: the editor alone says where the model is.
        agent: dict[str, Any] = {"mode": "ask", "plan_first": False}
        settings = {"remote": {"base_url": server.url, "model": "model-from-the-editor"}, "agent": agent}
        async with cove_server(agent_env, "visual-studio-code", options={"cove": settings}, root=root) as (lsp, _):
            editor = Editor(lsp, ["Deny"])
            refused = await run_task(lsp, "Fix add()")
            after_ask = (root / "calc.py").read_text()
            asked = list(editor.asked)
            agent["mode"] = "full-auto"
            lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"cove": settings}))
            fixed = await run_task(lsp, "Fix add()")
        models = {body["model"] for body in executor_requests(server)}
    assert refused["stopped"] == "answered" and after_ask == "def add(a, b):\n    return a - b\n"
    assert asked == ['Cove wants to run edit_file({"path": "calc.py", "old_text": "a - b", "new_text": "a + b"})']
    assert fixed["answer"] == "Fixed." and "return a + b" in (root / "calc.py").read_text()
    assert len(editor.asked) == 1  # full-auto, set from the editor, asked nothing
    assert models == {"model-from-the-editor"}


async def test_offline_from_the_editor_wins_over_the_project(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".cove").mkdir()
    (root / ".cove" / "config.toml").write_text("[remote]\noffline = false\n")
    settings = {"remote": {"base_url": "http://192.0.2.1:9/v1", "model": "m", "offline": True}}
    async with cove_server(agent_env, "visual-studio-code", options={"cove": settings}, root=root) as (lsp, _):
        with pytest.raises(JsonRpcException, match=r"offline mode refuses 192\.0\.2\.1"):
            await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.ask", ["What is add?"]))
