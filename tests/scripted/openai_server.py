"""A scripted OpenAI-compatible server on loopback: real HTTP, replaying a fixed list of replies.

It stands in where a test needs a capable model's decisions; it decides nothing itself. It records every request so
that tests can check what Cove sent (headers, messages, tools).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedOpenAIServer:
    """Replies to POST /v1/chat/completions with the next scripted reply (a dict, or (status, text))."""

    def __init__(
        self, script: Sequence[dict[str, Any] | tuple[int, str]], summary: str = "", critiques: Sequence[str] = ()
    ) -> None:
        self.script = list(script)
        #: The reply to every request for a compaction summary (its system prompt starts "Summarise"); such
        #: requests come when the context fills, not at a scripted step, so they do not consume the script.
        self.summary = summary
        #: The replies to the critique model's reviews (its system prompt starts "You review"), in order; when they
        #: run out, every review approves. Reviews come before a finish, not at a scripted step.
        self.critiques = list(critiques)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((dict(self.headers), body))
                first = body["messages"][0]["content"] if body.get("messages") else ""
                if server.summary and first.startswith("Summarise"):
                    reply: dict[str, Any] | tuple[int, str] = completion(server.summary)
                elif first.startswith("You review"):
                    reply = completion(server.critiques.pop(0) if server.critiques else "APPROVE")
                else:
                    reply = server.script.pop(0) if server.script else (500, "script exhausted")
                if body.get("stream") and isinstance(reply, dict):
                    self._stream(reply)
                    return
                status, text = reply if isinstance(reply, tuple) else (200, json.dumps(reply))
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: dict[str, Any]) -> None:
                """The reply as server-sent events, as OpenAI streams it: content word by word, then each tool
                call in two pieces, then the usage, then [DONE]."""
                message = reply["choices"][0]["message"]
                deltas: list[dict[str, Any]] = [
                    {"content": word} for word in re.findall(r"\S+\s*|\s+", message.get("content") or "")
                ]
                for index, call in enumerate(message.get("tool_calls") or []):
                    arguments = call["function"]["arguments"]
                    half = len(arguments) // 2
                    first = {"name": call["function"]["name"], "arguments": arguments[:half]}
                    deltas.append({"tool_calls": [{"index": index, "id": call["id"], "function": first}]})
                    rest = {"arguments": arguments[half:]}
                    deltas.append({"tool_calls": [{"index": index, "function": rest}]})
                events: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": delta}]} for delta in deltas]
                events.append({"choices": [], "usage": reply.get("usage")})
                data = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@contextmanager
def scripted_openai_server(
    script: Sequence[dict[str, Any] | tuple[int, str]], summary: str = "", critiques: Sequence[str] = ()
) -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer(script, summary, critiques)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def completion(content: str = "", tool_calls: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A chat completion body; tool_calls are (name, raw JSON arguments)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(tool_calls)
        ]
    return {"choices": [{"message": message}], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}


def executor_requests(server: ScriptedOpenAIServer) -> list[dict[str, Any]]:
    """The bodies of the requests that consumed the script (not the critique's reviews)."""
    return [body for _, body in server.requests if not _first(body).startswith("You review")]


def _first(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    return str(messages[0].get("content") or "")
