"""A recording ACP client on the Python SDK's client side (`acp.spawn_agent_process`): it starts `cove acp` as an
editor would, answers permission requests from a list, keeps buffers for `fs/*`, and records every update."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import acp
from acp import schema

from tests.scripted.openai_server import completion


def call(name: str, **arguments: Any) -> dict[str, Any]:
    """A scripted reply that calls one tool."""
    return completion("", [(name, json.dumps(arguments))])


class RecordingClient:
    """What an editor does with an agent's requests, recorded."""

    def __init__(self, answers: list[str] | None = None, buffers: dict[str, str] | None = None) -> None:
        #: The option each permission request is answered with, in order ("allow-once", "allow-always", "reject").
        self.answers = list(answers or [])
        self.buffers = dict(buffers or {})
        self.updates: list[Any] = []
        self.permissions: list[tuple[Any, list[schema.PermissionOption]]] = []
        self.writes: dict[str, str] = {}
        self.reads: list[str] = []
        #: Called with each update as it comes (a test that acts in the middle of a turn).
        self.watch: Callable[[Any], None] | None = None
        #: The agent's answer to `initialize`.
        self.hello: schema.InitializeResponse | None = None

    async def request_permission(
        self, options: list[schema.PermissionOption], session_id: str, tool_call: Any, **_: Any
    ) -> schema.RequestPermissionResponse:
        self.permissions.append((tool_call, options))
        answer = self.answers.pop(0)
        return schema.RequestPermissionResponse(outcome=schema.AllowedOutcome(option_id=answer, outcome="selected"))

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append(update)
        if self.watch is not None:
            self.watch(update)

    async def write_text_file(self, content: str, path: str, session_id: str, **_: Any) -> None:
        self.writes[path] = content
        self.buffers[path] = content

    async def read_text_file(self, path: str, session_id: str, **_: Any) -> schema.ReadTextFileResponse:
        self.reads.append(path)
        text = self.buffers.get(path)
        return schema.ReadTextFileResponse(content=text if text is not None else await asyncio.to_thread(_read, path))

    def on_connect(self, conn: Any) -> None:
        pass

    def of(self, kind: str) -> list[Any]:
        """The updates of one kind ("tool_call", "agent_message_chunk", ...), in order."""
        return [update for update in self.updates if update.session_update == kind]

    def said(self) -> str:
        return "".join(update.content.text for update in self.of("agent_message_chunk"))


def _read(path: str) -> str:
    return Path(path).read_text()


CAPABILITIES = schema.ClientCapabilities(
    fs=schema.FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=False
)


@asynccontextmanager
async def cove_acp(client: RecordingClient, env: dict[str, str], cwd: Path) -> AsyncIterator[Any]:
    """`cove acp` started in `cwd` and initialized, as an editor starts it; yields the connection."""
    async with acp.spawn_agent_process(
        cast(acp.Client, client), sys.executable, "-m", "cove.cli", "acp", env=env, cwd=cwd
    ) as (
        conn,
        _process,
    ):
        initialize = conn.initialize(protocol_version=acp.PROTOCOL_VERSION, client_capabilities=CAPABILITIES)
        client.hello = await asyncio.wait_for(initialize, 60)
        yield conn
