"""A generation shared by the keystrokes that type it (server/completion/live_suggestions.py), without a model: what a
keystroke says of a generation, and when it is answered from it."""

from __future__ import annotations

import asyncio

from cove.inference.completion.engine import Completion
from cove.protocol.jobs import CompletionMode
from cove.server.completion.live_suggestions import LiveSuggestion, Verdict, follow, line_around


def test_a_keystroke_agrees_waits_or_disagrees() -> None:
    assert follow("ault_actions", False, "a") is Verdict.AGREES
    assert follow("ault_actions", False, "") is Verdict.AGREES
    assert follow("au", False, "ault") is Verdict.UNDECIDED  # the next tokens decide
    assert follow("au", True, "ault") is Verdict.DISAGREES  # it ended short of what was typed
    assert follow("ault", False, "x") is Verdict.DISAGREES


def test_a_keystroke_continues_a_place_only_on_the_same_line_after_its_start() -> None:
    live = LiveSuggestion("a.py", "x = de", ")", CompletionMode.LINE)
    assert live.typed_at("x = def", ")") == "f"
    assert live.typed_at("x = d", ")") is None  # a deletion
    assert live.typed_at("x = def", "") is None  # the text after the cursor changed
    assert line_around("ab\ncd\nef", 4) == ("ab\nc", "d")


async def test_an_early_keystroke_is_answered_from_the_first_text_and_a_patient_one_at_the_end() -> None:
    live = LiveSuggestion("a.py", "x = de", "", CompletionMode.LINE)
    hurried = asyncio.create_task(live.answer("f", early=True))
    patient = asyncio.create_task(live.answer("", early=False))
    await asyncio.sleep(0)
    live.grew("f")  # nothing beyond what was typed yet
    await asyncio.sleep(0)
    assert not hurried.done()
    live.grew("fault(")
    answer = await hurried
    assert answer is not None and (answer.text, answer.stop) == ("ault(", "partial")
    assert not patient.done(), "a keystroke with no typing before it waits for the whole suggestion"
    live.ended(Completion("fault(x)", CompletionMode.LINE, "rule", backend="local"))
    whole = await patient
    assert whole is not None and (whole.text, whole.stop, whole.backend) == ("fault(x)", "rule", "local")
    later = await live.answer("fa", early=False)
    assert later is not None and (later.text, later.stop) == ("ult(x)", "suggestion")


async def test_a_keystroke_that_parts_ways_gets_no_answer_from_the_generation() -> None:
    live = LiveSuggestion("a.py", "x = ", "", CompletionMode.LINE)
    waiting = asyncio.create_task(live.answer("No", early=True))
    await asyncio.sleep(0)
    live.grew("N")
    await asyncio.sleep(0)
    assert not waiting.done(), "undecided: 'N' may still become 'No'"
    live.grew("Nu")
    assert await waiting is None
    assert await live.answer("x", early=True) is None
