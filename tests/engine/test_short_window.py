"""The short first window with the real default model: at a cold place a short window answers at once, and goes on
answering the keystrokes there while the full window is evaluated (`warm`, in the background in the server); the
keystroke after that answers from the full window, exactly as if there had been no short answer."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from cove.config import CompletionConfig, ModelConfig
from cove.errors import Cancelled
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.model.local_model import LocalModel
from tests.conftest import ARGPARSE

pytestmark = pytest.mark.model

#: A cold place: a line of argparse.py with some 500 prompt tokens before it.
PLACE = ("seen_non_default_actions.add(action)", len("seen_non_def"))


@pytest.fixture(scope="module")
def model(model_path: Path) -> LocalModel:
    return LocalModel(model_path, ModelConfig(n_ctx=4096))


def fresh(model: LocalModel, **changes: object) -> CompletionEngine:
    """An engine bounded by tokens, not time, so that a loaded machine gets the same text as an idle one."""
    model.clear()
    changes = {"time_budget_ms": 20_000, "block_time_budget_ms": 60_000, "reuse_suggestions": False, **changes}
    return CompletionEngine(model, dataclasses.replace(CompletionConfig(), **changes))  # type: ignore[arg-type]


def at(needle: str, into: int) -> CompletionRequest:
    text = ARGPARSE.read_text()
    return CompletionRequest(str(ARGPARSE), text, text.index(needle) + into)


def typed(request: CompletionRequest, characters: int = 1) -> CompletionRequest:
    """The cursor moved on as if the user had typed what the file holds there."""
    return dataclasses.replace(request, offset=request.offset + characters)


class StopAfterChecks(threading.Event):
    """A stop flag that turns set after it has been checked `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_a_cold_place_answers_from_the_short_window_then_the_full_one_takes_over(model: LocalModel) -> None:
    request = at(*PLACE)
    full = fresh(model, first_window_chars=0).complete(request)
    assert not full.short_window and full.prompt_tokens > 400
    engine = fresh(model)
    first = engine.complete(request)
    assert first.short_window and first.prompt_tokens < full.prompt_tokens / 2, first
    assert first.text, "the short window still sees the line and the lines before it"
    assert engine.warm(typed(request)).done  # what the server does in the background after a short answer
    second = engine.complete(typed(request))
    assert not second.short_window and second.reused_tokens >= second.prompt_tokens - 3, second
    reference = fresh(model, first_window_chars=0, reuse_kv_cache=False).complete(typed(request))
    assert second.text == reference.text


def test_keystrokes_are_answered_from_the_short_window_until_the_full_one_is_ready(model: LocalModel) -> None:
    """No keystroke waits for the full window's prefill: typing on with no pause (nothing ran in the background),
    each keystroke is answered from the short window, its KV state reused; once the full window was evaluated (in
    the server, between keystrokes), it answers, as if there had been no short answer."""
    request = at(*PLACE)
    engine = fresh(model)
    assert engine.complete(request).short_window
    second = engine.complete(typed(request))
    assert second.short_window and second.reused_tokens >= second.prompt_tokens - 3, second
    assert engine.warm(typed(request, 2)).done
    third = engine.complete(typed(request, 2))
    assert not third.short_window and third.reused_tokens >= third.prompt_tokens - 3, third
    elsewhere = engine.complete(at("def _get_values(self, action, arg_strings):", 0))
    assert elsewhere.short_window, "another place gets its own short answers"
    reference = fresh(model, first_window_chars=0, reuse_kv_cache=False).complete(typed(request, 2))
    assert third.text == reference.text


def test_the_extension_answers_the_short_answer_again_from_the_full_window(model: LocalModel) -> None:
    placed = at(*PLACE)
    line_end = placed.text.index("\n", placed.offset)
    request = dataclasses.replace(placed, text=placed.text[: placed.offset] + placed.text[line_end:])  # being typed
    reference = fresh(model, first_window_chars=0, reuse_kv_cache=False).complete(request)
    engine = fresh(model, reuse_suggestions=True)
    short = engine.complete(request)
    assert short.short_window and short.text != reference.text, "the place must show the difference"
    assert engine.extend(request).done  # what the server does in the background after a short answer
    text = request.text[: request.offset] + reference.text[0] + request.text[request.offset :]
    served = engine.complete(CompletionRequest(request.document, text, request.offset + 1))  # its first character
    assert (served.stop, served.text) == ("suggestion", reference.text[1:]), served


def test_a_warm_readies_the_short_window_first(model: LocalModel) -> None:
    request = at(*PLACE)
    engine = fresh(model)
    warmed = engine.warm(request, StopAfterChecks(12))  # stopped some chunks into the full window
    assert not warmed.done
    full_kept = list(model.tokens)
    assert full_kept, "the full window was begun"
    answer = engine.complete(typed(request))
    assert answer.short_window and answer.reused_tokens >= answer.prompt_tokens - 3, answer
    assert model.tokens == full_kept, "the short answer left the full window's tokens as they were"
    rest = engine.warm(typed(request))  # the extension after the short answer goes on from them
    full = engine.complete(typed(request, 2))
    assert rest.done and rest.tokens <= full.prompt_tokens - len(full_kept) + 3, (rest, full)
    assert not full.short_window and full.reused_tokens >= full.prompt_tokens - 3, full


def test_a_cancelled_short_answer_keeps_what_it_evaluated(model: LocalModel) -> None:
    request = at(*PLACE)
    engine = fresh(model)
    with pytest.raises(Cancelled):
        engine.complete(request, StopAfterChecks(2))  # asked before it starts, before each batch, between tokens
    assert not model.tokens, "the full window was not touched"
    answer = engine.complete(request)
    assert answer.short_window and 0 < answer.reused_tokens < answer.prompt_tokens, answer


def test_no_short_window_when_turned_off(model: LocalModel) -> None:
    answer = fresh(model, first_window_chars=0).complete(at(*PLACE))
    assert not answer.short_window and answer.reused_tokens == 0


def test_a_place_near_the_top_without_context_has_no_short_window(model: LocalModel) -> None:
    text = ARGPARSE.read_text()
    request = CompletionRequest(str(ARGPARSE), text, 200)
    answer = fresh(model).complete(request)
    assert not answer.short_window


def test_first_window_chars_sizes_the_short_window(model: LocalModel) -> None:
    small = fresh(model, first_window_chars=300).complete(at(*PLACE))
    large = fresh(model, first_window_chars=1200).complete(at(*PLACE))
    assert small.short_window and large.short_window
    assert 1.5 * small.prompt_tokens < large.prompt_tokens, (small.prompt_tokens, large.prompt_tokens)
