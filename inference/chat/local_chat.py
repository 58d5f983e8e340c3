"""The local model as a chat model with tools: every reply is a well-formed tool call or a final answer.

The base model has no chat template, so the conversation is laid out as plain text with the tools listed, and the
reply is constrained by a grammar to `{"tool": ..., "arguments": {...}}` or `{"answer": "..."}`. The prompt holds as
much of the conversation, its most recent part, as the model's context (`[model] n_ctx`) has room for beside the reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cove.inference.chat.chat_model import ChatReply, ToolCall
from cove.inference.chat.constrained import tool_call_schema
from cove.inference.model.local_model import LocalModel

#: Tokens of the context left free beside the prompt and the reply: the prompt is tokenized again where it is used
#: (with its BOS, and joined where this counts its parts apart).
PROMPT_MARGIN_TOKENS = 16


class LocalChat:
    """`chat(messages, tools)` over the local model, with grammar-constrained replies."""

    def __init__(
        self, model: LocalModel, max_tokens: int = 512, between_tokens: Callable[[], None] | None = None
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        #: Called between two tokens of a reply (the daemon lends the model to completions there).
        self.between_tokens = between_tokens
        self.calls = 0

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        tools = tools or []
        prompt = self.prompt(messages, tools)
        schema = tool_call_schema(tools) if tools else {"anyOf": []}
        schema["anyOf"].append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
        self.calls += 1
        text = self.model.constrained(prompt, schema, self.max_tokens, self.between_tokens)
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            # Cut off by max_tokens: report it as an answer rather than break the loop.
            return ChatReply(f"(the local model's reply was cut off: {text[:200]})", ())
        if "answer" in data:
            if on_text is not None:  # a grammar-bound reply is known whole only at its end
                on_text(str(data["answer"]))
            return ChatReply(str(data["answer"]), ())
        return ChatReply("", (ToolCall(f"local-{self.calls}", data["tool"], data["arguments"]),))

    def prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
        """One step's prompt: the tools, the conversation's most recent part that fits the model's context beside a
        reply of `max_tokens`, and how to reply."""
        listing = "\n".join(f"- {t['function']['name']}: {t['function']['description']}" for t in tools)
        head = f"Tools:\n{listing}\n\n"
        tail = (
            '\n\nReply with one JSON object: {"tool": NAME, "arguments": {...}} to call a tool, '
            'or {"answer": "..."} when the task is done.\nASSISTANT: '
        )
        conversation = "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)
        model = self.model
        room = model.n_ctx - self.max_tokens - len(model.tokenize(head + tail)) - PROMPT_MARGIN_TOKENS
        tokens = model.tokenize(conversation)
        if len(tokens) > room:
            conversation = model.detokenize(tokens[len(tokens) - max(room, 0) :])
        return head + conversation + tail
