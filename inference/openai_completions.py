"""Completions from any OpenAI-compatible `/v1/completions` endpoint (vLLM, Ollama, LM Studio, llama.cpp's and
llama-cpp-python's servers, hosted services): `prompt` (context and the text before the cursor) and, for
fill-in-the-middle models, `suffix`; streamed, cut by the stop rule as it streams, and the stream closed the moment
the request is superseded (the server then stops generating)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from cove.errors import Cancelled, ModelError
from cove.inference.completion_backend import Generated, GenerationJob, Warmed
from cove.inference.remote import endpoint_client

#: Seconds to connect; a server that takes longer is treated as down.
CONNECT_TIMEOUT_S = 2.0
#: Seconds the first piece may take (the server processes the prompt first); a server slower than that is passed
#: over for a while. After the first piece, the completion's time budget applies.
FIRST_PIECE_TIMEOUT_S = 5.0


class OpenAICompletions:
    """A completion backend over HTTP; blocking, one request per call."""

    name = "openai"

    def __init__(
        self, base_url: str, model: str, api_key_env: str = "", offline: bool = True, send_suffix: bool = True
    ) -> None:
        self.base_url, self.model, self.send_suffix = base_url.rstrip("/"), model, send_suffix
        self._http = endpoint_client(base_url, api_key_env, offline, timeout_s=30)

    def __repr__(self) -> str:
        return f"OpenAICompletions({self.base_url!r}, {self.model!r})"  # no headers: the key stays out of logs

    def describe(self) -> str:
        return f"{self.model or 'the model'} at {self.base_url} (OpenAI-compatible /completions)"

    def probe(self) -> str:
        """Whether the server answers, what it serves, and how fast: for `cove doctor`. ModelError if it does not."""
        started = time.perf_counter()
        try:
            response = self._http.get("/models", timeout=httpx.Timeout(5.0, connect=CONNECT_TIMEOUT_S))
        except httpx.HTTPError as err:
            raise ModelError(f"cannot reach {self.base_url}: {err.__class__.__name__}: {err}") from err
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise ModelError(f"{self.base_url}/models answered {response.status_code}: {response.text[:200]}")
        try:
            names = [str(item.get("id")) for item in response.json().get("data", [])]
        except (ValueError, AttributeError):
            names = []
        served = ", ".join(names[:3]) or "no model listed"
        return f"{self.base_url} answers in {seconds * 1000:.0f} ms; serves {served}"

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        return Warmed(0, True)  # an OpenAI-compatible server offers no way to prefill a prompt without generating

    def forget(self, document: str) -> None:
        pass  # the server keeps no state of ours

    def close(self) -> None:
        self._http.close()

    def body(self, job: GenerationJob) -> dict[str, Any]:
        """The request for `job`: greedy, streamed, the window's prefix after the workspace context."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": job.context + job.window.prefix,
            "max_tokens": job.max_new,
            "temperature": 0,
            "stream": True,
        }
        if self.send_suffix and job.window.suffix:
            body["suffix"] = job.window.suffix
        return body

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        if stop_requested():
            raise Cancelled("completion superseded before it started")
        timeout = httpx.Timeout(max(FIRST_PIECE_TIMEOUT_S, job.budget_s), connect=CONNECT_TIMEOUT_S)
        try:
            with self._http.stream("POST", "/completions", json=self.body(job), timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(f"{self.base_url} answered {response.status_code}: {response.text[:300]}")
                with ClosedWhen(stop_requested, response):
                    return self._read(response.iter_lines(), job, stop_requested, on_text)
        except (Cancelled, ModelError):
            raise
        except Exception as err:  # the watcher closed the stream under the reader, or the network failed
            if stop_requested():
                raise Cancelled("completion cancelled; its stream was closed") from err
            if isinstance(err, httpx.TimeoutException):
                raise ModelError(f"{self.base_url} was slower than the completion's time budget ({err})") from err
            if isinstance(err, httpx.HTTPError | httpx.StreamError):
                raise ModelError(f"cannot reach {self.base_url}: {err.__class__.__name__}: {err}") from err
            raise

    def _read(
        self,
        lines: Iterator[str],
        job: GenerationJob,
        stop_requested: Callable[[], bool],
        on_text: Callable[[str], None] | None,
    ) -> Generated:
        text, pieces, finish = "", 0, None
        deadline: float | None = None
        for line in lines:
            if stop_requested():
                raise Cancelled("completion cancelled during generation")
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            try:
                choice = (json.loads(payload).get("choices") or [{}])[0]
            except (json.JSONDecodeError, AttributeError, IndexError) as err:
                raise ModelError(f"{self.base_url} streamed a malformed event: {err}") from err
            piece = choice.get("text") or ""
            finish = choice.get("finish_reason") or finish
            if piece:
                deadline = deadline or time.perf_counter() + job.budget_s
                pieces += 1
                text += piece
                cut = job.rule.cut(text)
                if cut is not None:
                    return Generated(cut, "rule", generated_tokens=pieces)
                if on_text is not None:
                    on_text(text)
            if deadline is not None and time.perf_counter() > deadline:
                return Generated(job.rule.finish(text, ended=False), "time", generated_tokens=pieces)
        if finish == "length":
            return Generated(job.rule.finish(text, ended=False), "tokens", generated_tokens=pieces)
        return Generated(job.rule.finish(text, ended=True), "end", generated_tokens=pieces)


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
