"""Completions from the daemon's one resident model (`[routing] complete = ["daemon", "local"]`), with real processes:
two `cove lsp` (two editor windows) against one daemon load the model once; the daemon killed with SIGKILL in the
middle of a completion costs nothing but that the local model answers; the daemon is started again and serves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from cove.daemon_client import DaemonClient
from cove.errors import DaemonError, DaemonUnavailable
from cove.protocol.codes import UNFIT_MODEL
from cove.protocol.params import StatusParams
from cove.runtime import daemon_paths
from tests.conftest import ARGPARSE, JSON_DECODER, find_line
from tests.lsp.harness import cove_server, inline_params, open_file
from tests.lsp.test_server_backend import ready_message, status_of, type_at

pytestmark = pytest.mark.model

RETRY_S = 2


def daemon_status(env: dict[str, str]) -> dict[str, Any]:
    with DaemonClient(daemon_paths(env).socket) as client:
        status: dict[str, Any] = client.call(StatusParams())
    return status


def finished_events(client: DaemonClient, wait_s: float) -> list[dict[str, Any]]:
    """The run's `finished` events among what arrived so far, waiting up to `wait_s` for one."""
    return wait_for_event(client, "finished", wait_s)


def wait_for_event(client: DaemonClient, kind: str, wait_s: float = 60) -> list[dict[str, Any]]:
    """The agent events of type `kind` among what arrived so far, waiting up to `wait_s` for one."""
    deadline = time.monotonic() + wait_s
    client.set_timeout(0.05)
    while True:
        done = [m for m in client.notifications if m.get("params", {}).get("type") == kind]
        if done or time.monotonic() > deadline:
            return done
        with contextlib.suppress(TimeoutError):
            client.notifications.append(client.receive())


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_two_windows_share_the_daemons_one_model(agent_env: dict[str, str]) -> None:
    env = dict(agent_env, COVE_ROUTING_COMPLETE='["daemon", "local"]')
    async with cove_server(env) as (first, _), cove_server(env) as (second, _):
        ready = await ready_message(first)
        # The daemon loaded its model while the editor showed the loading progress.
        assert ready.startswith("ready: completions from the Cove daemon's model (gemma3"), ready
        assert daemon_status(env)["completions"]["loaded"]
        uri, text = open_file(first, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        one = await first.text_document_inline_completion_async(inline_params(uri, line, column + 25))
        assert isinstance(one, types.InlineCompletionList) and one.items
        assert one.items[0].insert_text == "add(action)"
        uri2, text2 = open_file(second, JSON_DECODER)
        line2, column2 = find_line(text2, "self.parse_float = parse_float or float")
        two = await second.text_document_inline_completion_async(inline_params(uri2, line2, column2 + 18))
        assert isinstance(two, types.InlineCompletionList) and two.items
        for lsp in (first, second):
            assert (await status_of(lsp))["answered_last"] == "daemon"
        # An agent run in the daemon, on the same model: a keystroke during its step is answered first.
        project = Path(env["XDG_DATA_HOME"]).parent / "project"
        project.mkdir()
        (project / "notes.py").write_text("def total(items):\n    return sum(items)\n")
        with DaemonClient(daemon_paths(env).socket, name="test-agent") as agent:
            session = agent.request("session/create", {"project": str(project), "title": "t"})["id"]
            task = "Explain what notes.py does."
            run = {"session_id": session, "task": task, "read_only": True, "max_steps": 2}
            with pytest.raises(DaemonError, match="chat template") as refused:  # the default model cannot plan
                agent.request("agent/run", run)
            assert refused.value.rpc_code == UNFIT_MODEL
            agent.request("agent/run", run | {"unfit_model_ok": True})  # here only its load on the model matters
            assert wait_for_event(agent, "route"), "the run's first step chose its model"  # and now evaluates
            type_at(first, uri, 2, line, column + 25, "x")  # not what was suggested: the model is asked
            during = await first.text_document_inline_completion_async(inline_params(uri, line, column + 26))
            assert isinstance(during, types.InlineCompletionList)
            assert (await status_of(first))["answered_last"] == "daemon"
            # Answered while the step was paused (whether the short run then ends before this line reads its events
            # is the clock's: the count of preemptions is what says the keystroke went first).
            assert daemon_status(env)["completions"]["preemptions"] >= 1, "answered while the step was paused"
            assert finished_events(agent, wait_s=300), "the run went on and finished"
        completions = daemon_status(env)["completions"]
        assert completions["loaded"] and completions["loads"] == 1 and completions["served"] >= 3, completions
        servers = [lsp._server.pid for lsp in (first, second)]  # type: ignore[union-attr]
        daemon = daemon_status(env)["pid"]
        # Neither window holds weights: each is a fraction of the daemon that does.
        assert all(resident_kib(pid) < resident_kib(daemon) / 2 for pid in servers), [
            resident_kib(pid) for pid in [*servers, daemon]
        ]


async def test_the_daemon_killed_mid_completion_costs_one_keystroke_and_comes_back(agent_env: dict[str, str]) -> None:
    env = dict(
        agent_env,
        COVE_ROUTING_COMPLETE='["daemon", "local"]',
        COVE_REMOTE_RETRY_AFTER_S=str(RETRY_S),
        COVE_COMPLETION_REUSE_SUGGESTIONS="false",  # every keystroke asks a model
    )
    async with cove_server(env) as (lsp, _):
        await ready_message(lsp)
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        cursor = column + len("seen_non_default_actions.")
        first = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor))
        assert isinstance(first, types.InlineCompletionList) and first.items
        assert (await status_of(lsp))["answered_last"] == "daemon"
        pid = daemon_status(env)["pid"]
        # Another document: the daemon has a cold prefill to do, and is killed in the middle of it.
        uri2, text2 = open_file(lsp, JSON_DECODER)
        line2, column2 = find_line(text2, "self.parse_float = parse_float or float")
        asked = asyncio.ensure_future(
            lsp.text_document_inline_completion_async(inline_params(uri2, line2, column2 + 18))
        )
        await asyncio.sleep(0.15)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        second = await asked
        assert isinstance(second, types.InlineCompletionList) and second.items, "the local model answered it"
        assert (await status_of(lsp))["answered_last"] == "local"
        # Started again in the background; after retry_after_s the daemon serves again.
        for _ in range(200):
            try:
                if daemon_status(env)["pid"] != pid:
                    break
            except DaemonUnavailable:
                pass
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(0.0, killed + RETRY_S + 0.5 - time.monotonic()))
        type_at(lsp, uri, 2, line, cursor, "a")
        third = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor + 1))
        assert isinstance(third, types.InlineCompletionList) and third.items
        assert (await status_of(lsp))["answered_last"] == "daemon"
        assert daemon_status(env)["pid"] != pid


async def test_the_daemon_frees_its_model_when_idle_and_the_editor_sees_it_load_again(
    agent_env: dict[str, str],
) -> None:
    env = dict(agent_env, COVE_ROUTING_COMPLETE='["daemon", "local"]', COVE_MODEL_IDLE_UNLOAD_S="1")
    async with cove_server(env) as (lsp, _):
        await ready_message(lsp)
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        first = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 25))
        assert isinstance(first, types.InlineCompletionList) and first.items
        for _ in range(100):  # `[model] idle_unload_s` = 1: freed within a second or two
            if not daemon_status(env)["completions"]["loaded"]:
                break
            await asyncio.sleep(0.1)
        assert not daemon_status(env)["completions"]["loaded"]
        type_at(lsp, uri, 2, line, column + 25, "x")
        again = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 26))
        assert isinstance(again, types.InlineCompletionList)
        assert daemon_status(env)["completions"]["loads"] == 2
        shown: list[tuple[str, object]] = []
        for _ in range(100):  # the progress's end follows the reply
            shown = [
                (type(report).__name__, getattr(report, "message", None))
                for reports in lsp.progress_reports.values()
                for report in reports
            ]
            if ("WorkDoneProgressEnd", "ready") in shown:
                break
            await asyncio.sleep(0.05)
        assert ("WorkDoneProgressBegin", "loading the default model in the Cove daemon") in shown, shown
        assert ("WorkDoneProgressEnd", "ready") in shown, shown
