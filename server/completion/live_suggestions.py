"""Suggestions that keep up with typing: one generation at a place serves every keystroke that types what it is
generating, so that no work is thrown away while the user types faster than the model writes.

A keystroke whose text before the cursor continues the generation's start, on the same line, with characters that
the generation has produced (or may still produce: it has not got that far) does not stop it: it is answered from
it. A keystroke that types something else stops it at once (between two tokens) and starts the next one from the
newest text. While the user types on, what has been generated so far beyond the typed text is an answer to show
(the first tokens are worth the most); a keystroke with no typing before it waits for the generation to end, as a
user who pauses is shown the whole suggestion.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import threading
from dataclasses import dataclass, field

from cove.inference.completion.engine import Completion
from cove.inference.completion.stop_rules import trim_suffix_overlap
from cove.protocol.jobs import CompletionMode


class Verdict(enum.Enum):
    """What a keystroke says of a generation it came during."""

    #: The generated text starts with what was typed since the generation began.
    AGREES = "agrees"
    #: What was generated so far is a prefix of what was typed: the next tokens decide.
    UNDECIDED = "undecided"
    #: The typed text and the generated text part ways (or the generation ended short of the typed text).
    DISAGREES = "disagrees"


def follow(generated: str, finished: bool, typed: str) -> Verdict:
    """Whether text `typed` since a generation began agrees with the `generated` text (`finished`: no more comes)."""
    if generated.startswith(typed):
        return Verdict.AGREES
    if not finished and typed.startswith(generated):
        return Verdict.UNDECIDED
    return Verdict.DISAGREES


def line_around(text: str, offset: int) -> tuple[str, str]:
    """The text before the cursor and the rest of the cursor's line after it."""
    end = text.find("\n", offset)
    return text[:offset], text[offset : len(text) if end < 0 else end]


@dataclass
class TypingCounts:
    """What keystrokes did with generations since the server started, for `cove.status`."""

    #: Generations started (each asks the backend once, or serves the last suggestion's rest).
    generations: int = 0
    #: Keystrokes answered from a generation that an earlier keystroke started (no model call of their own).
    shared: int = 0
    #: Answers given before their generation ended (the user typed on meanwhile).
    early: int = 0
    #: Generations stopped before their end: a keystroke typed something else, the file was closed, the user went on in
    #: another file, or a local action needed the model.
    stopped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(eq=False)
class LiveSuggestion:
    """One generation at a place, as keystrokes see it: its text so far, and how it ended. Every method but `stop`
    runs on the event loop; the model's thread reports through the loop."""

    document: str
    #: The document's text before the cursor, and the rest of the cursor's line, where the generation began.
    before: str
    line_suffix: str
    mode: CompletionMode
    stop: threading.Event = field(default_factory=threading.Event)
    #: Generated so far (not yet cut by the suffix's overlap).
    text: str = ""
    completion: Completion | None = None
    error: BaseException | None = None
    #: The generated text when a keystroke was last answered before the end (None: never).
    answered_early: str | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.completion is not None or self.error is not None

    def typed_at(self, before: str, line_suffix: str) -> str | None:
        """What was typed since the generation began, if a keystroke with `before` and `line_suffix` continues its
        place; None for another place."""
        if line_suffix != self.line_suffix or not before.startswith(self.before):
            return None
        return before[len(self.before) :]

    def verdict(self, typed: str) -> Verdict:
        if self.error is not None:
            return Verdict.DISAGREES
        if self.completion is not None:
            return follow(self.completion.text, True, typed)
        return follow(self.text, False, typed)

    def grew(self, text: str) -> None:
        """The generation has `text` so far."""
        self.text = text
        self._pulse()

    def ended(self, completion: Completion | None, error: BaseException | None = None) -> None:
        self.completion, self.error = completion, error
        self._pulse()

    @property
    def grew_after_answer(self) -> bool:
        """It ended with more than the last keystroke answered early was shown: worth asking again for."""
        made = self.completion
        return made is not None and self.answered_early is not None and len(made.text) > len(self.answered_early)

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def answer(self, typed: str, early: bool) -> Completion | None:
        """The suggestion for a keystroke that typed `typed` since the generation began: the rest of the generated
        text once the generation ends, or (`early`) as soon as there is some; None once they disagree."""
        while True:
            changed = self._changed
            verdict = self.verdict(typed)
            if verdict is Verdict.DISAGREES:
                return None
            if self.completion is not None:
                return self._rest(self.completion.text, typed, self.completion.stop)
            rest = self.text[len(typed) :] if verdict is Verdict.AGREES else ""
            if early and rest.strip():
                self.answered_early = self.text
                return self._rest(self.text, typed, "partial")
            await changed.wait()

    def _rest(self, text: str, typed: str, stop: str) -> Completion:
        made = self.completion
        rest = (
            trim_suffix_overlap(text[len(typed) :], self.line_suffix, "") if stop == "partial" else text[len(typed) :]
        )
        if made is None:
            return Completion(rest, self.mode, "partial")
        if typed:  # served from the generation of a keystroke before: no model call of its own
            return Completion(rest, made.mode, "suggestion", backend=made.backend)
        return dataclasses.replace(made, text=rest)
