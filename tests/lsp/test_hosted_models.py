"""The host serves the model each project asks for, on the default routing, through the real `cove lsp` and the
daemon it starts: in one daemon, the project whose `.cove/config.toml` chooses another GGUF (the tiny qwen2 FIM model
the tests write) is served that one while another project keeps the default; an editor's `n_ctx` reaches the
daemon's model; `cove.status` says which file serves and which setting chose it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError

from cove.daemon_client import DaemonClient
from cove.runtime import daemon_paths
from tests.conftest import ARGPARSE, find_line
from tests.lsp.harness import cove_server, open_file
from tests.lsp.test_as_installed import suggestion
from tests.lsp.test_server_backend import status_of

pytestmark = pytest.mark.model


@pytest.fixture
def routed_env(agent_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A daemon of the test's own, and the default routing (`["daemon", "local"]`)."""
    yield {key: value for key, value in agent_env.items() if key != "COVE_ROUTING_COMPLETE"}


def project(tmp_path: Path, name: str, settings: str = "") -> Path:
    root = tmp_path / name
    (root / ".git").mkdir(parents=True)
    (root / "argparse_copy.py").write_text(ARGPARSE.read_text())
    if settings:
        (root / ".cove").mkdir()
        (root / ".cove" / "config.toml").write_text(settings)
    return root


def daemon_status(env: dict[str, str]) -> dict[str, Any]:
    with DaemonClient(daemon_paths(env).socket) as client:
        status: dict[str, Any] = client.request("status")
    return status


async def complete_in(lsp: Any, root: Path) -> str:
    uri, text = open_file(lsp, root / "argparse_copy.py")
    line, column = find_line(text, "seen_non_default_actions.add(action)")
    return await suggestion(lsp, uri, line, column + len("seen_non_default_actions."))


async def test_a_project_choosing_another_gguf_is_served_it_while_another_keeps_the_default(
    tmp_path: Path, routed_env: dict[str, str], fim_model: Path
) -> None:
    coder = project(tmp_path, "coder", f"[model]\npath = {str(fim_model)!r}\nn_ctx = 1024\n")
    plain = project(tmp_path, "plain")
    async with cove_server(routed_env, root=plain) as (plain_lsp, _), cove_server(routed_env, root=coder) as (lsp, _):
        assert await complete_in(plain_lsp, plain) == "add(action)"  # the default model's words
        await complete_in(lsp, coder)  # the tiny model's noise: which model served is what counts
        coder_status, plain_status = await status_of(lsp), await status_of(plain_lsp)
        host = daemon_status(routed_env)
        await complete_in(plain_lsp, plain)
        again = daemon_status(routed_env)
        told = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cove.cli", "daemon", "status"],
            cwd=coder,
            env=routed_env,
            capture_output=True,
            text=True,
            check=True,
        )
    assert f"this project's model {fim_model} (n_ctx 1024) loaded (2 model(s) in the daemon)" in told.stderr, told
    assert f"model.path set by {coder / '.cove' / 'config.toml'}" in told.stderr, told
    assert (coder_status["answered_last"], plain_status["answered_last"]) == ("daemon", "daemon")
    assert coder_status["model"] == {
        "path": str(fim_model),
        "chosen_by": str(coder / ".cove" / "config.toml"),
        "n_ctx": 1024,
    }
    assert plain_status["model"] == {"path": "the default model", "chosen_by": "the default", "n_ctx": 4096}
    models = {m["path"]: m for m in host["completions"]["models"]}
    assert set(models) == {str(fim_model), "the default model"}, models
    assert models[str(fim_model)]["loaded"] and models[str(fim_model)]["n_ctx"] == 1024
    assert models["the default model"]["loaded"] and models["the default model"]["loads"] == 1
    # Each went on being served its own: the default model was not loaded again for the plain project.
    assert again["pid"] == host["pid"] and again["completions"]["loads"] == host["completions"]["loads"] == 2


async def test_an_editors_n_ctx_reaches_the_daemons_model(tmp_path: Path, routed_env: dict[str, str]) -> None:
    plain = project(tmp_path, "plain")
    async with cove_server(routed_env, root=plain, options={"model": {"n_ctx": 2048}}) as (lsp, _):
        assert await complete_in(lsp, plain) == "add(action)"
        status = await status_of(lsp)
        host = daemon_status(routed_env)
    assert status["model"]["chosen_by"] == "the default" and status["model"]["n_ctx"] == 2048
    (model,) = host["completions"]["models"]
    assert (model["n_ctx"], model["loaded"]) == (2048, True), model


async def test_a_model_that_cannot_load_is_reported_with_its_file_and_the_setting_that_chose_it(
    tmp_path: Path, routed_env: dict[str, str]
) -> None:
    """The daemon refuses the model (it is the model, not the daemon: the fallback could not load it either): the
    editor is told once, naming the file and the config file that chose it; a keystroke gets the error, not a hang."""
    broken = project(tmp_path, "broken", "[model]\npath = '/nowhere/coder.gguf'\n")
    chosen = f"model.path set by {broken / '.cove' / 'config.toml'}"
    async with cove_server(routed_env, root=broken) as (lsp, _):
        with pytest.raises(JsonRpcInternalError, match=r"model\.path is /nowhere/coder\.gguf, which is not a file"):
            await asyncio.wait_for(complete_in(lsp, broken), 60)
        status = await status_of(lsp)
        shown = [m.message for m in lsp.messages if m.type == types.MessageType.Error]
    assert status["serving"] == "nothing" and chosen in status["error"], status
    assert len(shown) == 1 and "/nowhere/coder.gguf" in shown[0] and chosen in shown[0], shown
