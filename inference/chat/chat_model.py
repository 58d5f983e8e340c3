"""What every chat model speaks: the tool calls it asks for, its reply, and the one method the agent needs of it.

The remote client, the local grammar-constrained chat and the agent's loop all use these types, so they live here,
apart from any one model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class ChatModel(Protocol):
    """What the agent needs of a model: one chat completion with tools, its text streamed to `on_text`."""

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        """Answer `messages`, offering `tools` (OpenAI function schemas); text is streamed to `on_text` as it comes."""
        ...
