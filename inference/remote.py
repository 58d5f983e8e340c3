"""Any OpenAI-compatible chat server (Ollama, llama.cpp's server, vLLM, hosted APIs) through httpx.

Keys come from an environment variable named in config and are sent only as a bearer header: never logged, never
stored, never in an error message. In offline mode every endpoint that is not on loopback is refused before any
connection is made.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from cove.errors import ModelError
from cove.inference.chat import ChatReply, ToolCall


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_client(base_url: str, api_key_env: str, offline: bool, timeout_s: float) -> httpx.Client:
    """An HTTP client of an OpenAI-compatible server: refused before any connection when offline mode forbids the
    host; the key, from the named environment variable, only in the Authorization header."""
    if offline and not is_loopback(base_url):
        raise ModelError(
            f"offline mode refuses {urlsplit(base_url).hostname}: only loopback endpoints are allowed; "
            "set offline = false to use a remote server"
        )
    headers = {}
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ModelError(f"the API key variable {api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)


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
        for line in lines:
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            try:
                chunk = json.loads(payload)
            except json.JSONDecodeError as err:
                raise ModelError(f"{self.base_url} streamed a malformed event: {err}") from err
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
