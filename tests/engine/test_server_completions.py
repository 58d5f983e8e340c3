"""Completions from a real OpenAI-compatible server on loopback (llama.cpp's server's /v1, with the same default
model), routed by `[routing] complete`: the server answers what the local model would, a dead server costs one
request before the local model answers, a superseded request's stream is closed, offline mode refuses other hosts."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cove.config import CompletionConfig, CoveConfig, ModelConfig, RemoteConfig, RoutingConfig
from cove.errors import Cancelled
from cove.inference.completion.completion_routing import RoutedCompletions
from cove.inference.completion.daemon_completions import DaemonCompletions
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.completion.openai_completions import OpenAICompletions
from cove.inference.completion.prompt_window import build_window
from cove.inference.model.local_model import LocalModel
from cove.protocol.jobs import CompletionMode, GenerationJob, StopRule
from tests.conftest import ARGPARSE
from tests.llama_server import decoded_by_slot, free_port, llama_server

pytestmark = pytest.mark.model

NEEDLE = "seen_non_default_actions.add(action)"


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[str]:
    """llama.cpp's server: its OpenAI-compatible endpoints."""
    with llama_server(model_path) as running:
        yield f"{running.root}/v1"


@pytest.fixture(scope="module")
def model(model_path: Path) -> LocalModel:
    return LocalModel(model_path, ModelConfig(n_ctx=4096))


def config(url: str, **remote: object) -> CoveConfig:
    completion = CompletionConfig(time_budget_ms=20_000, block_time_budget_ms=60_000, reuse_suggestions=False)
    settings = RemoteConfig(base_url=url, model="default", completion_suffix=False)
    return CoveConfig(
        completion=completion,
        remote=dataclasses.replace(settings, **remote),  # type: ignore[arg-type]
        routing=RoutingConfig(complete=("remote", "local")),
    )


def request() -> CompletionRequest:
    """A cursor after a whole token (the local backend's token healing has nothing to heal there)."""
    text = ARGPARSE.read_text()
    offset = text.index(NEEDLE) + len("seen_non_default_actions.")
    return CompletionRequest(str(ARGPARSE), text, offset)


def test_the_server_answers_what_the_local_model_would(server: str, model: LocalModel) -> None:
    settings = config(server)
    local = CompletionEngine(model, settings.completion)
    model.clear()
    expected = local.complete(request())
    routed = CompletionEngine(model, settings.completion)
    routed.reroute(settings)
    got = routed.complete(request())
    assert (got.backend, expected.backend) == ("openai", "local")
    assert got.text == expected.text == "add(action)", (got.text, expected.text)
    assert "OpenAI-compatible /completions" in routed.describe()


def test_a_dead_server_costs_one_request_then_is_tried_again(model: LocalModel) -> None:
    now = [0.0]
    dead = OpenAICompletions(f"http://127.0.0.1:{free_port()}/v1", "m", send_suffix=False)
    engine = CompletionEngine(model, config("").completion)
    routed = RoutedCompletions([dead, engine.local], clock=lambda: now[0])
    engine.backend = routed
    first = engine.complete(request())  # refused at once: the same request goes on to the local model
    assert first.backend == "local" and first.text == "add(action)"
    [remote, local] = routed.status()
    assert remote.state == "skipped" and "cannot reach" in remote.reason and local.state == "ready"
    assert "passed over openai" in routed.describe()
    now[0] += 31  # after the pause the server is probed again (and, still dead, skipped again)
    assert routed.serving() is dead
    engine.complete(dataclasses.replace(request(), document="other"))
    assert routed.status()[0].state == "skipped"


def test_a_superseded_request_closes_its_stream(server: str, model: LocalModel) -> None:
    backend = OpenAICompletions(server, "default", send_suffix=False)
    text = ARGPARSE.read_text()
    offset = text.index("def _get_values(self, action, arg_strings):") + len(
        "def _get_values(self, action, arg_strings):"
    )
    window = build_window(text, offset, None, 3000, 600)
    rule = StopRule(CompletionMode.BLOCK, window.line_prefix, window.line_suffix, 1000)
    job = GenerationJob("argparse", window, CompletionMode.BLOCK, rule, 400, 60.0)
    stop = threading.Event()
    pieces: list[str] = []

    def on_text(so_far: str) -> None:
        pieces.append(so_far)
        stop.set()  # a newer keystroke arrives after the first piece

    with pytest.raises(Cancelled):
        backend.generate(job, stop.is_set, on_text)
    assert len(pieces) == 1
    # The server's own counter: it stopped well short of the 400 tokens asked for once the stream was closed.
    root = server.removesuffix("/v1")
    for _ in range(200):
        if not any(slot.get("is_processing") for slot in httpx.get(f"{root}/slots", timeout=5).json()):
            break
        time.sleep(0.05)
    decoded = decoded_by_slot(root)
    assert 0 <= max(decoded) < 100, f"400 tokens were asked for; the server made {decoded} before it stopped"


def test_offline_mode_refuses_other_hosts_before_connecting(model: LocalModel) -> None:
    engine = CompletionEngine(model, config("").completion)
    engine.reroute(config("http://192.0.2.1:9/v1", offline=True))
    assert isinstance(engine.backend, RoutedCompletions)
    [remote, _] = engine.backend.status()
    assert remote.state == "unavailable" and "offline mode refuses 192.0.2.1" in remote.reason
    assert remote.name == "openai"  # as the backend would be named, had it been built
    assert engine.complete(request()).backend == "local"


def test_the_suffix_is_sent_only_when_completion_suffix_is_on() -> None:
    text = "def f(x):\n    return x\n\nprint(f(1))\n"
    window = build_window(text, text.index("x\n\n"), None, 3000, 600)
    rule = StopRule(CompletionMode.LINE, window.line_prefix, window.line_suffix, 8)
    job = GenerationJob("a.py", window, CompletionMode.LINE, rule, 8, 1.0, context="# context\n")
    with_suffix = OpenAICompletions("http://127.0.0.1:9/v1", "m").body(job)
    without = OpenAICompletions("http://127.0.0.1:9/v1", "m", send_suffix=False).body(job)
    assert with_suffix["suffix"] == window.suffix and "suffix" not in without
    assert with_suffix["prompt"] == "# context\n" + window.prefix and with_suffix["stream"] is True


def test_the_default_is_the_daemons_model_then_the_local_one(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(
        DaemonCompletions, "start", lambda self: None
    )  # tests/lsp/test_daemon_completions.py starts one
    engine = CompletionEngine(model, CompletionConfig())
    engine.reroute(CoveConfig())
    assert isinstance(engine.backend, RoutedCompletions)
    daemon, local = engine.backend.targets
    assert isinstance(daemon, DaemonCompletions) and daemon.paths.socket == tmp_path / "cove" / "daemon.sock"
    assert local is engine.local
    engine.reroute(CoveConfig(routing=RoutingConfig(complete=("local",))))
    backend: object = engine.backend
    assert backend is engine.local


def test_doctor_probes_the_completion_server(server: str, clean_env: dict[str, str]) -> None:
    env = dict(clean_env, COVE_ROUTING_COMPLETE='["remote", "local"]', COVE_REMOTE_BASE_URL=server)
    up = subprocess.run([sys.executable, "-m", "cove.cli", "doctor"], env=env, capture_output=True, text=True)
    line = next(row for row in up.stdout.splitlines() if "completion" in row)
    assert line.startswith("ok ") and f"{server} answers in" in line and "gemma-3-270m" in line, up.stdout
    env["COVE_REMOTE_BASE_URL"] = f"http://127.0.0.1:{free_port()}/v1"
    down = subprocess.run([sys.executable, "-m", "cove.cli", "doctor"], env=env, capture_output=True, text=True)
    assert down.returncode == 1 and "FAIL completion cannot reach" in down.stdout, down.stdout
