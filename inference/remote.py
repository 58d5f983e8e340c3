"""Any OpenAI-compatible chat server (Ollama, llama.cpp's server, vLLM, hosted APIs) through httpx.

Keys come from an environment variable named in config and are sent only as a bearer header: never logged, never
stored, never in an error message. In offline mode every endpoint that is not on loopback is refused before any
connection is made.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from cove.errors import ModelError


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for; `arguments` parsed, or `error` when the model's JSON was malformed."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ChatReply:
    """The model's answer: text, tool calls, and the token counts the server reported."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RemoteModel:
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self, base_url: str, model: str, api_key_env: str = "", offline: bool = True, timeout_s: float = 120
    ) -> None:
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
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"RemoteModel({self.base_url!r}, {self.model!r})"  # no headers: the key stays out of logs

    def close(self) -> None:
        self._http.close()

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> ChatReply:
        """One chat completion; errors from the network or the server become ModelError with what to check."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        try:
            response = self._http.post("/chat/completions", json=body)
        except httpx.HTTPError as err:
            raise ModelError(f"cannot reach {self.base_url}: {err.__class__.__name__}: {err}") from err
        if response.status_code != 200:
            raise ModelError(f"{self.base_url} answered {response.status_code}: {response.text[:300]}")
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
