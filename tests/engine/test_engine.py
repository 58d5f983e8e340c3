"""The completion engine with the real default model: cache reuse must never change what the model says."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from cove.config import CompletionConfig, ModelConfig
from cove.errors import Cancelled
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.model.local_model import LocalModel
from cove.protocol.jobs import GenerationJob
from tests.conftest import ARGPARSE, JSON_DECODER, find_line

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model(model_path: Path) -> LocalModel:
    return LocalModel(model_path, ModelConfig(n_ctx=4096))


def fresh(model: LocalModel, **changes: object) -> CompletionEngine:
    """An engine bounded by tokens, not time, so that a loaded machine gets the same text as an idle one. Every
    prompt here is the full window: the short first window at a cold place is tested in test_short_window.py."""
    model.clear()
    changes = {"time_budget_ms": 20_000, "block_time_budget_ms": 60_000, "first_window_chars": 0, **changes}
    return CompletionEngine(model, dataclasses.replace(CompletionConfig(), **changes))  # type: ignore[arg-type]


def at(path: Path, needle: str, into: int) -> CompletionRequest:
    text = path.read_text()
    line, column = find_line(text, needle)
    offset = text.index(needle) + into
    assert line >= 0 and column >= 0
    return CompletionRequest(str(path), text, offset)


def test_kv_reuse_changes_nothing_but_speed(model: LocalModel) -> None:
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", 12)
    cold = fresh(model, reuse_kv_cache=False, reuse_suggestions=False).complete(request)
    engine = fresh(model, reuse_suggestions=False)
    first = engine.complete(request)
    typed = CompletionRequest(request.document, request.text, request.offset + 1)
    second = engine.complete(typed)
    assert first.text == cold.text
    assert second.reused_tokens > 0.9 * second.prompt_tokens, "the anchored prefix must be reused"
    baseline = fresh(model, reuse_kv_cache=False, reuse_suggestions=False).complete(typed)
    assert second.text == baseline.text


def test_switching_documents_restores_each_ones_cache(model: LocalModel) -> None:
    engine = fresh(model, reuse_suggestions=False)
    a = at(ARGPARSE, "seen_non_default_actions.add(action)", 12)
    b = at(JSON_DECODER, "def raw_decode(self, s, idx=0):", 8)
    engine.complete(a)
    engine.complete(b)
    assert engine.saved_state_bytes > 0, "leaving a document saves its KV state"
    again = engine.complete(CompletionRequest(a.document, a.text, a.offset + 1))
    assert again.reused_tokens > 0.9 * again.prompt_tokens, "the state of the first document came back"
    reference = fresh(model, reuse_kv_cache=False, reuse_suggestions=False).complete(
        CompletionRequest(a.document, a.text, a.offset + 1)
    )
    assert again.text == reference.text


def test_drafts_are_verified_by_the_model(model: LocalModel) -> None:
    request = at(ARGPARSE, "def _get_values(self, action, arg_strings):", 43)
    plain = fresh(model, draft_tokens=0, reuse_suggestions=False, block_time_budget_ms=60_000).complete(request)
    drafted = fresh(model, draft_tokens=6, reuse_suggestions=False, block_time_budget_ms=60_000).complete(request)
    assert drafted.drafted_tokens > 0, "code repeats itself: some drafts must be accepted"
    # A batch of several tokens is computed with other kernels than one token, so a near tie can flip far into a
    # block; the opening lines must agree.
    assert drafted.text.split("\n")[:3] == plain.text.split("\n")[:3]


def test_typing_the_suggestion_serves_the_rest_without_the_model(model: LocalModel) -> None:
    engine = fresh(model)
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", 12)
    first = engine.complete(request)
    assert len(first.text) > 2
    typed = request.text[: request.offset] + first.text[:2] + request.text[request.offset :]
    rest = engine.complete(CompletionRequest(request.document, typed, request.offset + 2))
    assert rest.stop == "suggestion"
    assert rest.text == first.text[2:]


def test_a_cancelled_request_raises_and_leaves_the_engine_usable(model: LocalModel) -> None:
    engine = fresh(model)
    stop = threading.Event()
    stop.set()
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", 12)
    with pytest.raises(Cancelled):
        engine.complete(request, stop)
    assert engine.complete(request).text


def test_a_block_completion_stays_inside_its_block(model: LocalModel) -> None:
    request = at(ARGPARSE, "def _get_values(self, action, arg_strings):", 43)
    completion = fresh(model).complete(request)
    lines = completion.text.split("\n")
    assert len(lines) >= 2 and lines[1].strip(), f"a block of code, not nothing: {completion.text!r}"
    assert lines[0] == ""
    assert all(not line.strip() or line.startswith("        ") for line in lines[1:])
    assert len(lines) - 1 <= CompletionConfig().max_block_lines


def test_a_prefill_interrupted_by_a_newer_keystroke_keeps_what_it_evaluated(model: LocalModel) -> None:
    """A cold prefill cancelled after some batches leaves them in the context: the next request for the same
    document starts from there instead of from nothing."""
    engine = fresh(model)
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", len("seen_non_def"))
    batches = [0]

    def stop_after_some_batches() -> bool:  # asked before the work starts and before each batch
        batches[0] += 1
        return batches[0] > 2

    with pytest.raises(Cancelled):
        engine.local.generate(_job(engine, request), stop_after_some_batches, None)
    kept = len(model.tokens)
    assert kept == model.n_batch, kept  # the one batch evaluated before the stop
    completion = engine.complete(request)
    assert completion.reused_tokens == kept and completion.prompt_tokens > kept
    assert completion.text.startswith("ault_actions")


def _job(engine: CompletionEngine, request: CompletionRequest) -> GenerationJob:
    from cove.inference.completion.prompt_window import build_window
    from cove.protocol.jobs import CompletionMode, StopRule

    config = engine.config
    window = build_window(request.text, request.offset, None, config.max_prefix_chars, config.max_suffix_chars)
    rule = StopRule(CompletionMode.LINE, window.line_prefix, window.line_suffix, config.max_block_lines)
    return GenerationJob(request.document, window, CompletionMode.LINE, rule, config.max_tokens, 20.0)
