"""The daemon's one resident model (inference/resident.py), with the real default model: a completion that arrives
during an agent step is answered before the step ends, and the step resumes with its KV state intact (its reply is
the one it gives alone); warm-ups give way; the model is freed after `idle_unload_s` and loaded again on use."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from cove.config import CoveConfig, ModelConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.model.local_model import LocalModel
from cove.inference.resident import Priority, ResidentModel, Turns
from cove.protocol.jobs import Warmed
from tests.conftest import ARGPARSE, JSON_DECODER, find_line

pytestmark = pytest.mark.model

MESSAGES = [
    {"role": "system", "content": "You answer questions about Python code."},
    {"role": "user", "content": "What does argparse.ArgumentParser.parse_args return? Answer at length."},
]


def resident(model_path: Path, **model: object) -> ResidentModel:
    config = CoveConfig(model=dataclasses.replace(ModelConfig(path=str(model_path)), **model))  # type: ignore[arg-type]
    return ResidentModel(config, chat_tokens=48)


def engine_over(model: ResidentModel) -> CompletionEngine:
    def never() -> LocalModel:
        raise AssertionError("the engine's own model is never loaded: the resident model serves")

    config = dataclasses.replace(CoveConfig().completion, time_budget_ms=20_000)
    return CompletionEngine(never, config, backend=model)


def request(path: Path = ARGPARSE, needle: str = "        self.prog = prog") -> CompletionRequest:
    """A cursor in the middle of `needle`'s line of `path`."""
    text = path.read_text()
    line, column = find_line(text, needle)
    lines = text.splitlines(keepends=True)
    offset = sum(len(x) for x in lines[:line]) + column + len(needle) // 2
    return CompletionRequest(path.as_uri(), text, offset)


@pytest.mark.parametrize("when", ["prompt", "reply"])
def test_a_completion_during_an_agent_step_comes_first_and_the_step_resumes_intact(model_path: Path, when: str) -> None:
    """Interrupted while its prompt is evaluated (between two chunks) or while its reply is generated (between two
    tokens), the step gives the reply it gives alone, and the completion the one the model gives alone."""
    shared = resident(model_path)
    alone = shared.chat(MESSAGES).content
    pauses = shared.pause_points  # where one step may pause: its prompt's chunks, then each token of its reply
    assert pauses >= 10, "the prompt and the reply are long enough to be interrupted"
    expected = engine_over(resident(model_path)).complete(request()).text

    replies: list[str] = []
    step = threading.Thread(target=lambda: replies.append(shared.chat(MESSAGES).content))
    at = 2 if when == "prompt" else pauses - 3
    step.start()
    while shared.pause_points < pauses + at:
        time.sleep(0.002)
    completion = engine_over(shared).complete(request())
    assert step.is_alive(), "the keystroke was answered before the step finished"
    step.join()
    assert shared.preemptions == 1
    assert completion.text == expected, "the completion is the one the model gives alone"
    assert replies == [alone], "the step resumed from its own KV state"
    assert shared.loads == 1


def test_a_warm_up_gives_way_to_a_completion(model_path: Path) -> None:
    shared = resident(model_path)
    engine = engine_over(shared)
    engine.complete(request(JSON_DECODER, "        self.parse_float = "))  # loaded, at another document
    warmed: list[Warmed] = []
    warming = threading.Thread(target=lambda: warmed.append(engine.warm(request())))
    warming.start()
    model = shared.backend.model
    while len(model.tokens) < 64 or shared.backend._current != ARGPARSE.as_uri():  # warming, chunk by chunk
        time.sleep(0.002)
    completion = engine.complete(request(JSON_DECODER, "        self.strict = strict"))
    warming.join()
    assert not warmed[0].done and warmed[0].tokens > 0, "stopped for the completion, keeping what it evaluated"
    assert completion.stop != "suggestion", "the model was asked, after the warm-up stopped"


def test_turns_go_to_the_most_urgent_first_then_in_order_of_arrival() -> None:
    turns, order = Turns(), []

    def use(turn: Priority, who: str) -> None:
        with turns.take(turn):
            order.append(who)

    arrivals = [
        (Priority.WARM, "warm"),
        (Priority.COMPLETION, "window 1"),
        (Priority.AGENT, "agent"),
        (Priority.COMPLETION, "window 2"),
    ]
    arrivals += [(Priority.COMPLETION, "window 1 again")]
    with turns.take(Priority.WARM):
        for turn, who in arrivals:
            before = turns.queued(turn)
            threading.Thread(target=use, args=(turn, who)).start()
            while turns.queued(turn) == before:
                time.sleep(0.001)
    while len(order) < len(arrivals):
        time.sleep(0.001)
    assert order == ["window 1", "window 2", "window 1 again", "agent", "warm"]


def test_the_model_is_freed_when_idle_and_loaded_again_on_use(model_path: Path) -> None:
    shared = resident(model_path, idle_unload_s=1)
    engine = engine_over(shared)
    first = engine.complete(request()).text
    assert shared.loaded and not shared.unload_if_idle(), "just used"
    time.sleep(1.1)
    assert shared.unload_if_idle() and not shared.loaded
    engine.forget(ARGPARSE.as_uri())  # no suggestion kept: the model is asked again
    assert engine.complete(request()).text == first
    assert shared.loads == 2


def test_idle_unload_zero_keeps_the_model(model_path: Path) -> None:
    shared = resident(model_path, idle_unload_s=0)
    engine_over(shared).complete(request())
    time.sleep(0.2)
    assert not shared.unload_if_idle() and shared.loaded
