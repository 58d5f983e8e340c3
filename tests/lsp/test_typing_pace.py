"""Typing at a person's pace through the real server and the real model: a keystroke every 150 ms that never waits
for a reply, the request still pending cancelled by the next (`$/cancelRequest`), as editors send them.

What must hold: a suggestion is on screen at a new place before typing stops; a keystroke that types what the running
generation writes is answered from it (no model call of its own, counted in `cove.status`'s `typing`); one that types
something else stops it between two tokens; the full window is evaluated in the background and takes over."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import ARGPARSE, find_line
from tests.lsp.harness import cove_server, inline_params, open_file
from tests.lsp.test_warming import wait_for, warm_status

pytestmark = pytest.mark.model

#: A line of argparse.py typed anew at its place (the file opened with the line cut to its indent).
LINE = "seen_non_default_actions.add(action)"


@dataclass
class Typist:
    """Types into one document without waiting for replies; keeps the replies an editor would show (those to the
    newest request: older ones are cancelled)."""

    lsp: LanguageClient
    uri: str
    line: int
    column: int
    version: int = 1
    pending: tuple[str, asyncio.Future[Any]] | None = None
    #: (seconds since the typist started, characters typed when asked, suggestion) of every reply shown.
    shown: list[tuple[float, int, str]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def key(self, typed: int, char: str) -> asyncio.Future[Any]:
        """Type `char` (or a paste of several) to end at the `typed`-th character of the line and ask for a
        suggestion; the request before is cancelled if it is still pending."""
        if self.pending is not None and not self.pending[1].done():
            self.lsp.protocol.notify("$/cancelRequest", types.CancelParams(id=self.pending[0]))
        self.version += 1
        at = types.Position(self.line, self.column + typed - len(char))
        change = types.TextDocumentContentChangePartial(range=types.Range(at, at), text=char)
        identifier = types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version)
        self.lsp.text_document_did_change(types.DidChangeTextDocumentParams(identifier, [change]))
        ident = str(uuid.uuid4())
        params = inline_params(self.uri, self.line, self.column + typed)
        future = asyncio.wrap_future(
            self.lsp.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=ident)
        )
        self.pending = (ident, future)
        future.add_done_callback(lambda f: self._replied(ident, typed, f))
        return future

    def _replied(self, ident: str, typed: int, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None or self.pending is None or self.pending[0] != ident:
            return
        result = future.result()
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        if items and str(items[0].insert_text).strip():
            self.shown.append((time.perf_counter() - self.started, typed, str(items[0].insert_text)))

    async def type(self, text: str, pace_s: float, first: int = 1) -> float:
        """Type `text` a key every `pace_s`; returns when the last key went (seconds since the typist started)."""
        last = 0.0
        for index, char in enumerate(text, start=first):
            last = time.perf_counter() - self.started
            self.key(index, char)
            await asyncio.sleep(pace_s)
        return last


async def typing_counts(lsp: LanguageClient) -> dict[str, int]:
    status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
    return dict(status["typing"])


async def new_place(lsp: LanguageClient) -> Typist:
    """argparse.py opened with LINE cut to its indent, the model loaded (by a request elsewhere), nothing warmed."""
    text = ARGPARSE.read_text()
    line, column = find_line(text, LINE)
    start = text.index(LINE)
    uri, _ = open_file(lsp, ARGPARSE, text[:start] + text[start + len(LINE) :])
    await lsp.text_document_inline_completion_async(inline_params(uri, 0, 0))  # loads the model: not typing
    return Typist(lsp, uri, line, column)


async def test_at_a_new_place_a_suggestion_is_shown_before_typing_stops(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        typist = await new_place(lsp)
        before = await typing_counts(lsp)
        last_key = await typist.type(LINE, 0.15)
        shown_while_typing = [s for s in typist.shown if s[0] < last_key]
        assert shown_while_typing, f"nothing shown in {last_key:.1f} s of typing; shown after: {typist.shown}"
        after = await typing_counts(lsp)
        assert after["shared"] > before["shared"], "keystrokes were answered from generations they typed through"


async def test_a_keystroke_that_types_the_generation_is_answered_from_it(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        typist = await new_place(lsp)
        before = await typing_counts(lsp)
        asked = typist.key(len("seen_non_def"), "seen_non_def")  # a new generation at a cold place
        typed_through = typist.key(len("seen_non_def") + 1, "a")  # sent at once: its predecessor is cancelled
        reply = await asyncio.wait_for(typed_through, timeout=60)
        assert asked.cancelled() or asked.done()
        items = reply.items if isinstance(reply, types.InlineCompletionList) else reply
        assert items, "the keystroke that typed the suggestion's next character got its rest"
        text = str(items[0].insert_text)
        assert text and "ult_actions.add(action)".startswith(text), text
        after = await typing_counts(lsp)
        assert after["generations"] == before["generations"] + 1, (before, after)
        assert after["shared"] == before["shared"] + 1, "no model call of its own: answered from the first's"


async def test_a_keystroke_that_types_something_else_stops_the_generation(clean_env: dict[str, str]) -> None:
    options = {"completion": {"multiline": "always", "max_block_tokens": 400, "max_block_lines": 200}}
    async with cove_server(clean_env, options=options) as (lsp, _):
        text = "import os\n\n\ndef main():\n    \n"
        uri, _ = open_file(lsp, ARGPARSE.with_name("cove_typing_test.py"), text)
        await lsp.text_document_inline_completion_async(inline_params(uri, 0, 0))
        before = await typing_counts(lsp)
        typist = Typist(lsp, uri, 4, 4)
        typist.key(0, "")  # a block of up to 400 tokens: seconds of generation
        await asyncio.sleep(0.05)
        other = typist.key(1, "\u00a7")  # a character the model does not write there
        reply = await asyncio.wait_for(other, timeout=120)
        assert reply is not None
        after = await typing_counts(lsp)
        assert after["stopped"] == before["stopped"] + 1, "the first generation ended by being stopped, not by itself"
        assert after["generations"] == before["generations"] + 2, (before, after)


async def test_the_full_window_is_evaluated_in_the_background_and_takes_over(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        typist = await new_place(lsp)
        start = await warm_status(lsp)
        await typist.type("seen_", 0.15)
        warm = await wait_for(lsp, "prefilled", start["prefilled"] + 1)
        assert warm["short_answers"] > start["short_answers"], "the cold place was answered from the short window"
        assert warm["prefilled"] > start["prefilled"], "its full window was evaluated meanwhile, in the background"
        typist.key(len("seen_") + 1, "n")
        reply = await asyncio.wait_for(typist.pending[1], timeout=60) if typist.pending else None
        assert reply is not None
        await asyncio.sleep(0.2)
        assert (await warm_status(lsp))["short_answers"] == warm["short_answers"], "the full window answered"


async def test_a_suggestion_shown_early_is_announced_when_whole_and_then_served_whole(
    clean_env: dict[str, str],
) -> None:
    """The last keystroke of a burst is answered with the generation so far; once that generation ends with more,
    the server sends `cove/suggestionReady` (editors do not ask again on their own) and asking again gets it all."""
    async with cove_server(clean_env) as (lsp, _):
        text = "import logging\n\nlogger = logging.getLogger(__name__)\n\n\ndef greet(name):\n    \n"
        uri, _ = open_file(lsp, ARGPARSE.with_name("cove_ready_test.py"), text)
        await lsp.text_document_inline_completion_async(inline_params(uri, 0, 0))  # loads the model
        ready = asyncio.ensure_future(lsp.wait_for_notification("cove/suggestionReady"))
        typist = Typist(lsp, uri, 6, 4)
        typist.key(2, "lo")  # a generation starts...
        early = await asyncio.wait_for(typist.key(3, "g"), timeout=60)  # ...and the user types on at once
        items = early.items if isinstance(early, types.InlineCompletionList) else early
        shown = str(items[0].insert_text) if items else ""
        announced = await asyncio.wait_for(ready, timeout=60)
        assert announced.textDocument.uri == uri, announced
        again = await lsp.text_document_inline_completion_async(inline_params(uri, 6, 7))
        whole = str(again.items[0].insert_text) if isinstance(again, types.InlineCompletionList) else ""
        assert len(whole) > len(shown) and whole.startswith(shown.rstrip()), (shown, whole)
        counts = await typing_counts(lsp)
        assert counts["early"] >= 1, counts
