"""Completions from llama.cpp's HTTP server (`llama-server`) through its native endpoints.

`/infill` for fill-in-the-middle models: the text before and after the cursor as `input_prefix` / `input_suffix`, the
workspace context as an `input_extra` chunk (the server lays it out in the repository format where the model has
`<|repo_name|>` / `<|file_sep|>` tokens); a model without FIM tokens answers 501, and the backend goes on with
`/completion` and a plain prompt. Every request sets `cache_prompt` and pins the document to a slot (`id_slot`): each
of the server's slots keeps its own KV cache, so documents do not evict each other's prompt, as the local backend
keeps a saved state per document. `n_predict` and `t_max_predict_ms` bound generation on the server too; the stream
is cut by the stop rule as it comes and closed the moment a newer keystroke supersedes the request.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx

from cove.errors import ModelError
from cove.inference.completion.http_stream import (
    CONNECT_TIMEOUT_S,
    ClosedWhen,
    HttpStatusError,
    StreamEnd,
    stream_completion,
)
from cove.inference.http_endpoint import endpoint_client
from cove.protocol.jobs import ContextFile, Generated, GenerationJob, Warmed

logger = logging.getLogger(__name__)

#: The file name the workspace context goes under in `input_extra`.
CONTEXT_FILENAME = "context"


def server_root(base_url: str) -> str:
    """The server's root URL: llama-server's native endpoints sit beside its OpenAI ones, which users often give."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


#: Characters of a word's end held back for token healing (a few tokens' worth).
HEAL_CHARS = 12
_WORD_END = re.compile(r"[A-Za-z0-9_]+$")


def held_back(prefix: str) -> str:
    """The end of the word the prefix stops in (at most HEAL_CHARS), to be generated again by the model."""
    found = _WORD_END.search(prefix[-HEAL_CHARS:])
    return found.group(0) if found else ""


class SlotPinning:
    """Documents pinned to the server's slots, least recently used first to give way."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._pinned: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def slot_of(self, document: str) -> int:
        with self._lock:
            slot = self._pinned.pop(document, None)
            if slot is None:
                free = sorted(set(range(self.slots)) - set(self._pinned.values()))
                slot = free[0] if free else self._pinned.popitem(last=False)[1]
            self._pinned[document] = slot
            return slot

    def release(self, document: str) -> None:
        with self._lock:
            self._pinned.pop(document, None)


class LlamaServerCompletions:
    """A completion backend over llama-server's `/infill` and `/completion`; blocking, one request per call."""

    name = "llama-server"

    def __init__(self, base_url: str, api_key_env: str = "", offline: bool = True, infill: bool = True) -> None:
        self.root = server_root(base_url)
        #: Whether `/infill` is used (the model has FIM tokens and `[remote] completion_suffix` is on).
        self.infill = infill
        self._http = endpoint_client(self.root, api_key_env, offline, timeout_s=30)
        self._pinning: SlotPinning | None = None
        self._model = ""

    def __repr__(self) -> str:
        return f"LlamaServerCompletions({self.root!r})"

    def describe(self) -> str:
        endpoint = "/infill" if self.infill else "/completion"
        return f"{self._model or 'the model'} at {self.root} (llama-server {endpoint})"

    def properties(self) -> dict[str, Any]:
        """The server's `/props`: its model, slots and defaults. ModelError if it does not answer them."""
        try:
            response = self._http.get("/props", timeout=httpx.Timeout(5.0, connect=CONNECT_TIMEOUT_S))
        except httpx.HTTPError as err:
            raise ModelError(f"cannot reach {self.root}: {err.__class__.__name__}: {err}") from err
        if response.status_code != 200:
            raise ModelError(f"{self.root}/props answered {response.status_code}: {response.text[:200]}")
        try:
            props = response.json()
        except ValueError as err:
            raise ModelError(f"{self.root}/props is not JSON: is this llama.cpp's server?") from err
        if not isinstance(props, dict) or "total_slots" not in props:
            raise ModelError(f"{self.root}/props has no total_slots: is this llama.cpp's server?")
        return props

    def probe(self) -> str:
        """Whether the server answers, what it serves, its slots, whether the model fills in the middle, and the
        round trip: for `cove doctor`. ModelError if it does not answer."""
        started = time.perf_counter()
        props = self.properties()
        seconds = time.perf_counter() - started
        model = str(props.get("model_alias") or props.get("model_path") or "a model")
        body = {"input_prefix": "", "input_suffix": "", "n_predict": 1, "cache_prompt": False}
        try:
            infill = self._http.post("/infill", json=body, timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S))
        except httpx.HTTPError as err:
            raise ModelError(f"{self.root}/infill: {err.__class__.__name__}: {err}") from err
        self.infill = self.infill and infill.status_code != 501
        fim = "fills in the middle (/infill)" if infill.status_code == 200 else "no fill-in-the-middle (/completion)"
        return f"{self.root} answers in {seconds * 1000:.0f} ms; serves {model}; {props['total_slots']} slots; {fim}"

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        """Have the server evaluate `job`'s prompt into the document's slot (`n_predict` 0: nothing generated); the
        connection is closed, and the server stops, the moment `stop_requested()` turns true."""
        if stop_requested():
            return Warmed(0, False)
        try:
            body = {**self.body(job, self._slots().slot_of(job.document)), "n_predict": 0, "stream": False}
            path = "/infill" if self.infill else "/completion"
            with self._http.stream("POST", path, json=body) as response, ClosedWhen(stop_requested, response):
                reply = json.loads(response.read()) if response.status_code == 200 else {}
        except (httpx.HTTPError, httpx.StreamError, ValueError, ModelError):
            return Warmed(0, False)  # abandoned, or the server is down: the next completion finds out
        timings = reply.get("timings") if isinstance(reply, dict) else None
        evaluated = int(timings.get("prompt_n") or 0) if isinstance(timings, dict) else 0
        return Warmed(evaluated, bool(reply))

    def forget(self, document: str) -> None:
        if self._pinning is not None:
            self._pinning.release(document)

    def close(self) -> None:
        self._http.close()

    def body(self, job: GenerationJob, slot: int) -> dict[str, Any]:
        """The request for `job` on `slot`: greedy, streamed, the prompt cached in the document's slot.

        Token healing: a prefix that ends mid-word ends on a token the model rarely sees there; the word's end is held
        back (`held_back`) and a grammar makes the server generate it first, so the model picks its own tokens
        across the cursor."""
        held = held_back(job.window.prefix)
        prefix = job.window.prefix[: len(job.window.prefix) - len(held)]
        body: dict[str, Any] = {
            "n_predict": job.max_new,
            "t_max_predict_ms": round(job.budget_s * 1000),
            "temperature": 0,
            "top_k": 1,
            "stream": True,
            "cache_prompt": True,
            "id_slot": slot,
            "timings_per_token": True,  # the prompt's counts come with the first piece, not only at the end
        }
        if held:
            body["grammar"] = f'root ::= "{held}" .*'
        if self.infill:
            body["input_prefix"] = prefix
            body["input_suffix"] = job.window.suffix
            files = job.context_files or ((ContextFile(CONTEXT_FILENAME, job.context),) if job.context else ())
            body["input_extra"] = [{"filename": piece.name, "text": piece.text} for piece in files]
        else:
            body["prompt"] = job.context + prefix
        return body

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        slot = self._slots().slot_of(job.document)
        try:
            return self._stream(job, slot, stop_requested, on_text)
        except HttpStatusError as err:
            if not (self.infill and err.status == 501):
                raise
            logger.warning("completions: %s has no fill-in-the-middle (%s); using /completion", self.root, err.body)
            self.infill = False
            return self._stream(job, slot, stop_requested, on_text)

    def _stream(
        self, job: GenerationJob, slot: int, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        path = "/infill" if self.infill else "/completion"
        body, healed = self.body(job, slot), held_back(job.window.prefix)
        return stream_completion(self._http, path, body, job, stop_requested, on_text, _piece, healed)

    def _slots(self) -> SlotPinning:
        if self._pinning is None:
            props = self.properties()
            self._model = str(props.get("model_alias") or "")
            self._pinning = SlotPinning(int(props["total_slots"]))
        return self._pinning


def _piece(event: dict[str, Any], end: StreamEnd) -> str:
    """A llama-server stream event's text; its token counts, and the last event's stop type."""
    if event.get("stop") and event.get("stop_type") == "limit":
        end.finish = "length"
    timings = event.get("timings")
    if isinstance(timings, dict):
        end.reused_tokens = int(timings.get("cache_n") or 0)
        end.prompt_tokens = end.reused_tokens + int(timings.get("prompt_n") or 0)
    if "error" in event:
        raise ModelError(f"llama-server: {event['error']}")
    return str(event.get("content") or "")
