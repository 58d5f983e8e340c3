"""Any OpenAI-compatible chat server (Ollama, llama.cpp's server, vLLM, hosted APIs) through httpx; the client and
the event stream are the shared ones of `http_endpoint.py` (offline mode, the key only in a header)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from cove.errors import ModelError
from cove.inference.chat.chat_model import ChatReply, ToolCall
from cove.inference.http_endpoint import endpoint_client, sse_events


class RemoteModel:
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self, base_url: str, model: str, api_key_env: str = "", offline: bool = True, timeout_s: float = 120
    ) -> None:
        self._http = endpoint_client(base_url, api_key_env, offline, timeout_s)
        self.model = model
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"RemoteModel({self.base_url!r}, {self.model!r})"  # no headers: the key stays out of logs

    def close(self) -> None:
        self._http.close()

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        """One chat completion, streamed to `on_text` piece by piece when given; errors from the network or the
        server become ModelError with what to check."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        if on_text is not None:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        try:
            if on_text is None:
                response = self._http.post("/chat/completions", json=body)
                self._check(response)
                return self._reply(response)
            with self._http.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    self._check(response)
                return self._streamed(response.iter_lines(), on_text)
        except httpx.HTTPError as err:
            raise ModelError(
                f"cannot reach {self.base_url}: {err.__class__.__name__}: {err} (start that server, or point "
                "[remote] base_url at one that runs)"
            ) from err

    def _check(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise ModelError(f"{self.base_url} answered {response.status_code}: {response.text[:300]}")

    def _reply(self, response: httpx.Response) -> ChatReply:
        try:
            data = response.json()
            message = data["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise ModelError(f"{self.base_url} sent a reply that is not a chat completion: {err}") from err
        usage = data.get("usage") or {}
        calls = tuple(_tool_call(raw) for raw in message.get("tool_calls") or [])
        return ChatReply(
            message.get("content") or "", calls, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        )

    def _streamed(self, lines: Iterator[str], on_text: Callable[[str], None]) -> ChatReply:
        """Server-sent events: content deltas go to `on_text`; tool-call pieces are joined by their index."""
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: dict[str, int] = {}
        for chunk in sse_events(lines, self.base_url):
            if not isinstance(chunk, dict):
                raise ModelError(f"{self.base_url} streamed an event that is not an object: {chunk!r}")
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    content.append(delta["content"])
                    on_text(delta["content"])
                for piece in delta.get("tool_calls") or []:
                    call = calls.setdefault(
                        piece.get("index", 0), {"id": "", "function": {"name": "", "arguments": ""}}
                    )
                    call["id"] = piece.get("id") or call["id"]
                    function = piece.get("function") or {}
                    call["function"]["name"] += function.get("name") or ""
                    call["function"]["arguments"] += function.get("arguments") or ""
        tool_calls = tuple(_tool_call(calls[index]) for index in sorted(calls))
        return ChatReply("".join(content), tool_calls, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    name, text = str(function.get("name", "")), function.get("arguments", "{}")
    try:
        arguments = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as err:
        return ToolCall(str(raw.get("id", "")), name, error=f"malformed tool-call JSON: {err}")
    if not isinstance(arguments, dict):
        return ToolCall(str(raw.get("id", "")), name, error="tool-call arguments must be a JSON object")
    return ToolCall(str(raw.get("id", "")), name, arguments)
