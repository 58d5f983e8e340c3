"""The warming slot of the language server: background work in the model's thread that runs only while no completion
is pending, stops at its next chunk when one arrives, goes on after it, and gives way to newer places."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cove.inference.completion.openai_completions import OpenAICompletions
from cove.inference.completion.prompt_window import build_window
from cove.protocol.jobs import CompletionMode, GenerationJob, StopRule, Warmed
from cove.server.completion.warming import IdleWarming, WarmJob, WarmWork


class Prefill:
    """Work done in chunks that keeps its progress when stopped, as a prefill keeps what it evaluated."""

    def __init__(self, chunks: int, chunk_s: float = 0.01) -> None:
        self.chunks, self.chunk_s = chunks, chunk_s
        self.done = 0
        self.runs = 0

    def __call__(self, stop: threading.Event) -> Warmed:
        self.runs += 1
        start = self.done
        while self.done < self.chunks:
            if stop.is_set():
                return Warmed(self.done - start, False)
            time.sleep(self.chunk_s)
            self.done += 1
        return Warmed(self.done - start, True)


@pytest.fixture
def model_thread() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.shutdown(wait=True)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def settled(warming: IdleWarming, executor: ThreadPoolExecutor) -> None:
    """Once nothing runs and nothing waits, no warming can start before the next request: drain the model's thread,
    so that whatever was handed to it has run (a positive signal, not a wait for nothing to happen)."""
    await until(lambda: not warming.running)
    assert not warming.waiting
    await completion_in(executor, 0)


def completion_in(executor: ThreadPoolExecutor, seconds: float) -> asyncio.Future[None]:
    """A completion's work, queued in the model's thread behind whatever runs there."""
    return asyncio.wrap_future(executor.submit(time.sleep, seconds))


async def test_a_place_is_warmed_while_idle(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)
    place = Prefill(5)
    warming.request(WarmJob("a.py", place))
    await until(lambda: warming.counts.prefilled == 1)
    assert warming.counts.as_dict() == {"requested": 1, "prefilled": 1, "abandoned": 0, "tokens": 5, "short_answers": 0}
    assert not warming.waiting


async def test_a_completion_stops_warming_which_goes_on_after_it(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)
    place = Prefill(30)
    warming.request(WarmJob("a.py", place))
    await until(lambda: place.done >= 2)
    warming.completion_started()
    await completion_in(model_thread, 0.01)
    stopped_at = place.done
    assert stopped_at < 30 and warming.counts.abandoned == 1
    warming.completion_finished()  # served from the last suggestion: the place still waits
    await until(lambda: warming.counts.prefilled == 1)
    assert place.runs == 2 and warming.counts.tokens == 30, "the second run went on from where the first stopped"


async def test_nothing_starts_while_a_completion_is_pending(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)
    mark = warming.completion_started()
    place = Prefill(3)
    warming.request(WarmJob("a.py", place))
    assert not warming.running and warming.waiting  # not handed to the model's thread...
    await completion_in(model_thread, 0)
    assert place.runs == 0  # ...so it did not run
    warming.generation_finished(mark, asked_model=True)
    warming.completion_finished()  # the place came after the completion began: it stays
    await until(lambda: warming.counts.prefilled == 1)


async def test_a_completion_that_asked_the_model_replaces_the_waiting_place(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)
    place, follow_up = Prefill(30), Prefill(3)
    warming.request(WarmJob("a.py", place))
    await until(lambda: place.done >= 1)
    mark = warming.completion_started()
    await completion_in(model_thread, 0.01)
    warming.generation_finished(mark, asked_model=True, follow_up=WarmJob("a.py", follow_up))
    warming.completion_finished()
    await until(lambda: warming.counts.prefilled == 1)
    assert place.runs == 1 and follow_up.done == 3
    mark = warming.completion_started()
    warming.generation_finished(mark, asked_model=True)  # nothing left to do
    warming.completion_finished()
    await settled(warming, model_thread)
    assert place.runs == 1


async def test_a_newer_place_replaces_the_one_being_warmed(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)
    old, new = Prefill(100), Prefill(3)
    warming.request(WarmJob("a.py", old))
    await until(lambda: old.done >= 1)
    warming.request(WarmJob("a.py", new))
    await until(lambda: warming.counts.prefilled == 1)
    assert old.done < 100 and new.done == 3
    assert warming.counts.as_dict()["abandoned"] == 1 and warming.counts.requested == 2


async def test_failing_work_is_dropped(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)

    def broken(stop: threading.Event) -> Warmed:
        raise RuntimeError("the model is gone")

    work: WarmWork = broken
    warming.request(WarmJob("a.py", work))
    await until(lambda: not warming.waiting)
    place = Prefill(2)
    warming.request(WarmJob("a.py", place))
    await until(lambda: warming.counts.prefilled == 1)


async def test_closing_a_document_drops_its_warming(model_thread: ThreadPoolExecutor) -> None:
    warming = IdleWarming(model_thread, idle_s=0.01)
    running, waiting = Prefill(100), Prefill(3)
    warming.request(WarmJob("a.py", running))
    await until(lambda: running.done >= 1)
    warming.completion_started()
    warming.completion_finished()
    warming.forget("b.py")  # another document: nothing changes
    warming.forget("a.py")
    await until(lambda: warming.counts.abandoned == 1)
    await settled(warming, model_thread)
    assert running.runs == 1 and running.done < 100
    warming.request(WarmJob("b.py", waiting))
    warming.completion_started()
    warming.forget("b.py")
    warming.completion_finished()
    await settled(warming, model_thread)
    assert waiting.done == 0


async def test_a_backend_without_a_cache_is_neither_prefilled_nor_retried(model_thread: ThreadPoolExecutor) -> None:
    """An OpenAI-compatible server cannot prefill: its warm does nothing and says so, and nothing is counted."""
    runs: list[int] = []

    def nothing_to_fill(stop: threading.Event) -> Warmed:
        runs.append(1)
        return OpenAICompletions("http://127.0.0.1:9", "m").warm(_job(), stop.is_set)

    warming = IdleWarming(model_thread, idle_s=0.01)
    warming.request(WarmJob("a.py", nothing_to_fill))
    await settled(warming, model_thread)
    assert runs == [1], "dropped after its one try, not retried as if stopped early"
    assert warming.counts.as_dict() == {"requested": 1, "prefilled": 0, "abandoned": 0, "tokens": 0, "short_answers": 0}


def _job() -> GenerationJob:
    window = build_window("x = 1\ny = ", 10, None, 3000, 600)
    rule = StopRule(CompletionMode.LINE, window.line_prefix, window.line_suffix, 8)
    return GenerationJob("a.py", window, CompletionMode.LINE, rule, 8, 1.0)
