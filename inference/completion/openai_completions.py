"""Completions from any OpenAI-compatible `/v1/completions` endpoint (vLLM, Ollama, LM Studio, llama.cpp's and
llama-cpp-python's servers, hosted services): `prompt` (context and the text before the cursor) and, for
fill-in-the-middle models, `suffix`; streamed, cut by the stop rule as it streams, and the stream closed the moment
the request is superseded (the server then stops generating)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from cove.errors import ModelError
from cove.inference.completion.http_stream import CONNECT_TIMEOUT_S, StreamEnd, stream_completion
from cove.inference.http_endpoint import endpoint_client
from cove.protocol.jobs import Generated, GenerationJob, Warmed


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
        # An OpenAI-compatible server offers no way to prefill a prompt without generating: nothing is done, or counted.
        return Warmed(0, False, skipped=True)

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
        return stream_completion(self._http, "/completions", self.body(job), job, stop_requested, on_text, _piece)


def _piece(event: dict[str, Any], end: StreamEnd) -> str:
    """An OpenAI completion chunk's text; its finish reason and (when the server sends them) usage counts."""
    choice = (event.get("choices") or [{}])[0]
    end.finish = choice.get("finish_reason") or end.finish
    usage = event.get("usage")
    if isinstance(usage, dict):
        end.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            end.reused_tokens = int(details.get("cached_tokens") or 0)
    return str(choice.get("text") or "")
