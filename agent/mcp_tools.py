"""Tools of the MCP servers the user configured, offered to the agent like its own non-core tools.

Each server is started over stdio by the official MCP SDK, on an event loop thread of its own, so that the agent's
worker thread can call its tools synchronously. Tool names are namespaced `mcp__<server>__<tool>`. A server that
fails to start is reported and left out; the run goes on with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cove.agent.file_tools import ToolError
from cove.agent.sandbox import Sandbox
from cove.agent.tool_registry import ToolSpec
from cove.config import McpConfig
from cove.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class McpServerSpec:
    name: str
    argv: tuple[str, ...]


def parse_servers(config: McpConfig) -> list[McpServerSpec]:
    """`mcp.servers` entries as (name, argv); a malformed entry is a ConfigError naming it."""
    servers = []
    for entry in config.servers:
        name, sep, command = entry.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name) or not command.strip():
            raise ConfigError(f"mcp.servers: expected 'NAME = COMMAND ARGS...', got {entry!r}")
        try:
            argv = tuple(shlex.split(command))
        except ValueError as err:
            raise ConfigError(f"mcp.servers: cannot parse the command of {name!r}: {err}") from err
        servers.append(McpServerSpec(name, argv))
    return servers


class McpTools:
    """Connections to the configured servers for one run: their tools as specs, and calls to them."""

    def __init__(self, config: McpConfig, cwd: Path, sandbox: Sandbox | None = None) -> None:
        """`sandbox`: where the servers run (`[sandbox] mcp = true`); None: as the user, unconfined."""
        self.sandbox = sandbox
        self.timeout = float(config.timeout_s)
        self.servers = parse_servers(config)
        self.cwd = cwd
        self.specs: dict[str, ToolSpec] = {}
        #: Why a server is missing, one line each.
        self.failures: list[str] = []
        self._clients: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    def start(self) -> McpTools:
        """Start every server and list its tools (up to the timeout); returns self."""
        if self.servers:
            self._thread.start()
            self._ready.wait(self.timeout * len(self.servers) + 5)
        return self

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Call a server's tool; its error results become ToolErrors the model can act on."""
        server, _, tool = name.removeprefix("mcp__").partition("__")
        client = self._clients.get(server)
        if client is None:
            raise ToolError(f"the MCP server {server!r} is not connected")
        future = asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments), self._loop)
        try:
            result = future.result(self.timeout)
        except FutureTimeout:
            future.cancel()
            raise ToolError(f"{name} did not answer within {self.timeout:.0f} s") from None
        text = "\n".join(getattr(block, "text", f"[{getattr(block, 'type', 'content')}]") for block in result.content)
        if result.is_error:
            raise ToolError(f"{name} failed: {text[:2000]}")
        return text or "(no output)"

    def close(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(self.timeout)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self._serve()
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        from mcp import Client, StdioServerParameters

        assert self._stop is not None
        async with contextlib.AsyncExitStack() as stack:
            for server in self.servers:
                argv = list(server.argv)
                env = None
                if self.sandbox is not None:
                    argv, env = self.sandbox.command(argv, self.cwd), self.sandbox.environment(os.environ)
                params = StdioServerParameters(command=argv[0], args=argv[1:], cwd=self.cwd, env=env)
                try:
                    async with asyncio.timeout(self.timeout):  # in this task: anyio's scopes must not change task
                        client = await stack.enter_async_context(Client(params, read_timeout_seconds=self.timeout))
                        listed = await client.list_tools()
                except Exception as err:  # any failure of a user's server: reported, the others go on
                    self.failures.append(f"MCP server {server.name!r} ({shlex.join(server.argv)}) failed: {err}")
                    continue
                self._clients[server.name] = client
                for tool in listed.tools:
                    spec = _spec(server.name, tool)
                    self.specs[spec.name] = spec
            self._ready.set()
            await self._stop.wait()


def _spec(server: str, tool: Any) -> ToolSpec:
    schema = tool.input_schema or {}
    annotations = tool.annotations
    read_only = bool(annotations and annotations.read_only_hint)
    description = (tool.description or tool.name).strip()
    return ToolSpec(
        name=f"mcp__{server}__{tool.name}",
        description=f"{description} (from the MCP server {server})",
        parameters=dict(schema.get("properties") or {}),
        required=tuple(schema.get("required") or ()),
        read_only=read_only,
        core=False,
    )
