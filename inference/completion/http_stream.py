"""A streamed completion over HTTP, shared by the server backends: post, read the server-sent events, cut the text
by the stop rule as it streams, stop at the time budget, and close the stream the moment the request is superseded
(the server then stops generating)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from cove.errors import Cancelled, ModelError
from cove.inference.http_endpoint import sse_events
from cove.protocol.jobs import Generated, GenerationJob

#: Seconds to connect; a server that takes longer is treated as down.
CONNECT_TIMEOUT_S = 2.0
#: Seconds the first piece may take (the server processes the prompt first); a server slower than that is passed
#: over for a while. After the first piece, the completion's time budget applies.
FIRST_PIECE_TIMEOUT_S = 5.0


@dataclass
class StreamEnd:
    """What the events said besides text: why generation ended and the server's token counts."""

    finish: str | None = None  # "length" when a token limit cut it
    prompt_tokens: int = 0
    reused_tokens: int = 0


#: Reads one event's JSON: the text piece it carries, recording anything else in the StreamEnd.
PieceReader = Callable[[dict[str, Any], StreamEnd], str]


class HttpStatusError(ModelError):
    """The server answered with an error status."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status, self.body = status, body


def stream_completion(
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    job: GenerationJob,
    stop_requested: Callable[[], bool],
    on_text: Callable[[str], None] | None,
    read_piece: PieceReader,
    healed: str = "",
) -> Generated:
    """POST `body` to `path` (streamed) and follow the events; raises Cancelled when superseded, ModelError (an
    HttpStatusError for an error status) when the server fails, is unreachable, or is slower than the budget.

    `healed`: text held back from the prompt's end that the server was made to generate first (token healing); it is
    not part of the suggestion."""
    if stop_requested():
        raise Cancelled("completion superseded before it started")
    timeout = httpx.Timeout(max(FIRST_PIECE_TIMEOUT_S, job.budget_s), connect=CONNECT_TIMEOUT_S)
    where = f"{str(http.base_url).rstrip('/')}/{path.lstrip('/')}"
    try:
        with http.stream("POST", path, json=body, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                text = response.text[:300]
                raise HttpStatusError(f"{where} answered {response.status_code}: {text}", response.status_code, text)
            with ClosedWhen(stop_requested, response):
                return _follow(response.iter_lines(), job, stop_requested, on_text, read_piece, where, healed)
    except (Cancelled, ModelError):
        raise
    except Exception as err:  # the watcher closed the stream under the reader, or the network failed
        if stop_requested():
            raise Cancelled("completion cancelled; its stream was closed") from err
        if isinstance(err, httpx.TimeoutException):
            raise ModelError(f"{where} was slower than the completion's time budget ({err})") from err
        if isinstance(err, httpx.HTTPError | httpx.StreamError):
            raise ModelError(f"cannot reach {where}: {err.__class__.__name__}: {err}") from err
        raise


def _follow(
    lines: Iterator[str],
    job: GenerationJob,
    stop_requested: Callable[[], bool],
    on_text: Callable[[str], None] | None,
    read_piece: PieceReader,
    where: str,
    healed: str,
) -> Generated:
    end = StreamEnd()
    raw, text, pieces = "", "", 0
    deadline: float | None = None

    def generated(kept: str, stop: Any) -> Generated:
        return Generated(kept, stop, end.prompt_tokens, end.reused_tokens, pieces)

    for event in sse_events(lines, where):
        if stop_requested():
            raise Cancelled("completion cancelled during generation")
        try:
            piece = read_piece(event, end) if isinstance(event, dict) else ""
        except (AttributeError, IndexError, TypeError) as err:
            raise ModelError(f"{where} streamed a malformed event: {err}") from err
        if piece:
            deadline = deadline or time.perf_counter() + job.budget_s
            pieces += 1
            raw += piece
            if not raw.startswith(healed) and not healed.startswith(raw):
                raise ModelError(f"{where} did not generate the held-back {healed!r} first: {raw!r}")
            text = raw[len(healed) :]
            if not text:
                continue
            cut = job.rule.cut(text)
            if cut is not None:
                return generated(cut, "rule")
            if on_text is not None:
                on_text(text)
        if deadline is not None and time.perf_counter() > deadline:
            return generated(job.rule.finish(text, ended=False), "time")
    if end.finish == "length":
        return generated(job.rule.finish(text, ended=False), "tokens")
    return generated(job.rule.finish(text, ended=True), "end")


class ClosedWhen:
    """Close `response` as soon as `stop_requested()` turns true, from a watcher thread: a superseded request's
    stream ends at once, not when its next piece arrives."""

    def __init__(self, stop_requested: Callable[[], bool], response: httpx.Response) -> None:
        self._stop_requested, self._response = stop_requested, response
        self._done = threading.Event()

    def __enter__(self) -> None:
        threading.Thread(target=self._watch, daemon=True, name="cove-stream-watch").start()

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(0.01):
            if self._stop_requested():
                self._response.close()
                return
