"""Warming with the real default model: a place evaluated ahead of the keystroke is what the next completion there
reuses, a warm stops at its next chunk when asked and keeps what it evaluated, and nothing it does changes what the
model says."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from cove.config import CompletionConfig, ModelConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.completion.local_backend import WARM_CHUNK_TOKENS
from cove.inference.model.local_model import LocalModel
from tests.conftest import ARGPARSE

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model(model_path: Path) -> LocalModel:
    return LocalModel(model_path, ModelConfig(n_ctx=4096))


def fresh(model: LocalModel, **changes: object) -> CompletionEngine:
    """An engine bounded by tokens, not time, so that a loaded machine gets the same text as an idle one."""
    model.clear()
    changes = {"time_budget_ms": 20_000, "block_time_budget_ms": 60_000, "reuse_suggestions": False, **changes}
    return CompletionEngine(model, dataclasses.replace(CompletionConfig(), **changes))  # type: ignore[arg-type]


def at(path: Path, needle: str, into: int) -> CompletionRequest:
    text = path.read_text()
    return CompletionRequest(str(path), text, text.index(needle) + into)


def typed(request: CompletionRequest, characters: int = 1) -> CompletionRequest:
    """The same document with the cursor moved on as if the user had typed what the file holds there."""
    return dataclasses.replace(request, offset=request.offset + characters)


class StopAfterChecks(threading.Event):
    """A stop flag that turns set after it has been checked `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_a_warmed_place_is_reused_by_the_next_completion_there(model: LocalModel) -> None:
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", len("seen_non_def"))
    engine = fresh(model)
    warmed = engine.warm(request)
    assert warmed.done and warmed.tokens > 400, warmed
    completion = engine.complete(typed(request))
    assert completion.reused_tokens >= completion.prompt_tokens - 3, completion
    reference = fresh(model, reuse_kv_cache=False).complete(typed(request))
    assert completion.text == reference.text


def test_warming_again_evaluates_nothing(model: LocalModel) -> None:
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", len("seen_non_def"))
    engine = fresh(model)
    assert engine.warm(request).done
    assert engine.warm(request).tokens == 0


def test_a_stopped_warm_keeps_its_chunks_and_the_completion_goes_on_from_them(model: LocalModel) -> None:
    request = at(ARGPARSE, "def _get_values(self, action, arg_strings):", 0)
    engine = fresh(model, first_window_chars=0)  # the full window alone (test_short_window.py has the short one)
    warmed = engine.warm(request, StopAfterChecks(3))  # asked before it starts and before each chunk
    assert not warmed.done and warmed.tokens == 2 * WARM_CHUNK_TOKENS, warmed
    kept = len(model.tokens)
    completion = engine.complete(request)
    assert completion.reused_tokens == kept < completion.prompt_tokens


def test_warming_is_off_without_kv_reuse(model: LocalModel) -> None:
    request = at(ARGPARSE, "seen_non_default_actions.add(action)", len("seen_non_def"))
    engine = fresh(model, reuse_kv_cache=False)
    assert engine.warm(request).tokens == 0 and not model.tokens
