"""`cove acp`: Cove's agent for every editor that speaks the Agent Client Protocol (Zed, JetBrains IDEs, Neovim's
CodeCompanion and avante.nvim, Emacs' agent-shell), over stdio, one JSON-RPC message per line.

A face of the daemon, like `cove lsp`: sessions, runs, models, memory, checkpoints and the sandbox stay in the daemon
(started if absent); an ACP session is a daemon session, and a prompt is one agent run whose events are told as ACP
updates (`updates.py`). What this process keeps is what the connection needs: each session's folder, the mode the
client chose, and the tools the user allowed always in it.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acp
from acp import schema
from acp.helpers import update_agent_message_text, update_available_commands, update_tool_call

from cove import __version__
from cove.acp.choices import MODEL, MODES, default_model, model_option, models, modes, run_settings
from cove.acp.stdio import guarded_stdio
from cove.acp.updates import STOP_REASONS, Story, read_prompt, transcript_updates
from cove.config import CoveConfig, load_config
from cove.daemon_link import DaemonLink
from cove.errors import ConfigError, CoveError, DaemonError, InputError
from cove.protocol.codes import INTERNAL_ERROR, INVALID_PARAMS
from cove.protocol.events import AgentEvent, DecisionNeeded, FileWanted, Finished
from cove.protocol.params import (
    AgentCancel,
    AgentDecide,
    AgentFile,
    AgentRun,
    AgentUndo,
    CheckpointList,
    MemorySearch,
    SessionCreate,
    SessionList,
    SessionResume,
)

logger = logging.getLogger(__name__)

COMMANDS = {
    "undo": "Undo the agent's last file change in this session",
    "checkpoints": "List the workspace's checkpoints (cove undo --to N restores one)",
    "memory": "Search what Cove remembers about this project (/memory WORDS)",
}
ALLOW_ONCE, ALLOW_ALWAYS, REJECT = "allow-once", "allow-always", "reject"


@dataclass
class FaceSession:
    """What the connection keeps of a session: its folder, the client's mode and MCP servers, what is allowed."""

    session_id: str
    root: Path
    config: CoveConfig
    mode: str
    model: str
    mcp_servers: tuple[str, ...] = ()
    allowed: set[str] = field(default_factory=set)
    #: Prompt turns so far on this connection (tool call ids are unique per turn).
    turns: int = 0


class CoveAgent:
    """The ACP agent: each method a client calls, answered from the daemon."""

    def __init__(self, link: DaemonLink) -> None:
        self.link = link
        self.client: Any = None
        self.sessions: dict[str, FaceSession] = {}
        self.capabilities = schema.ClientCapabilities()

    def on_connect(self, conn: Any) -> None:
        self.client = conn

    async def initialize(
        self, protocol_version: int, client_capabilities: schema.ClientCapabilities | None = None, **_: Any
    ) -> schema.InitializeResponse:
        self.capabilities = client_capabilities or schema.ClientCapabilities()
        return schema.InitializeResponse(
            protocol_version=acp.PROTOCOL_VERSION,
            agent_capabilities=schema.AgentCapabilities(
                load_session=True,
                prompt_capabilities=schema.PromptCapabilities(embedded_context=True, image=False, audio=False),
                mcp_capabilities=schema.McpCapabilities(http=False, sse=False),
                session_capabilities=schema.SessionCapabilities(list=schema.SessionListCapabilities()),
            ),
            agent_info=schema.Implementation(name="cove", title="Cove", version=__version__),
            auth_methods=[],
        )

    async def new_session(self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any) -> schema.NewSessionResponse:
        root = _folder(cwd)
        created = await self._call(SessionCreate(str(root), "ACP session"))
        session = self._open(created["id"], root, mcp_servers)
        return schema.NewSessionResponse(
            session_id=session.session_id, modes=modes(session.mode), config_options=[self._model_option(session)]
        )

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> schema.LoadSessionResponse:
        root = _folder(cwd)
        resumed = await self._call(SessionResume(session_id))
        session = self._open(session_id, root, mcp_servers)
        for update in transcript_updates(resumed["transcript"]):
            await self.client.session_update(session_id=session_id, update=update)
        return schema.LoadSessionResponse(modes=modes(session.mode), config_options=[self._model_option(session)])

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None, **_: Any) -> Any:
        listed = await self._call(SessionList(str(_folder(cwd)) if cwd else None))
        return schema.ListSessionsResponse(
            sessions=[
                schema.SessionInfo(
                    session_id=found["id"],
                    cwd=found["project"],
                    title=found.get("preview") or found["title"] or None,
                    updated_at=datetime.datetime.fromtimestamp(found["updated"], datetime.UTC).isoformat(),
                )
                for found in listed
            ]
        )

    async def set_session_mode(self, session_id: str, mode_id: str, **_: Any) -> schema.SetSessionModeResponse:
        session = self._session(session_id)
        if mode_id not in MODES:
            raise _invalid(f"unknown mode {mode_id!r}; Cove's are {list(MODES)}")
        session.mode = mode_id
        return schema.SetSessionModeResponse()

    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **_: Any
    ) -> schema.SetSessionConfigOptionResponse:
        session = self._session(session_id)
        if config_id != MODEL:
            raise _invalid(f"unknown option {config_id!r}; Cove's session has {MODEL!r}")
        choices = models(session.config)
        if value not in choices:
            raise _invalid(f"no model {value!r} here; the choices are {list(choices)} ([remote] base_url adds one)")
        session.model = str(value)
        return schema.SetSessionConfigOptionResponse(config_options=[self._model_option(session)])

    def _model_option(self, session: FaceSession) -> schema.SessionConfigOptionSelect:
        return model_option(session.config, session.model)

    async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> schema.PromptResponse:
        session = self._session(session_id)
        try:
            asked = read_prompt(prompt, session.root)
        except InputError as err:
            raise _invalid(str(err)) from None
        if asked.text.startswith("/") and asked.text[1:].split(" ", 1)[0] in COMMANDS:
            await self._say(session_id, await self._command(session, asked.text[1:]))
            return schema.PromptResponse(stop_reason="end_turn")
        events = self.link.events(session_id)
        while not events.empty():  # what a finished run left behind
            events.get_nowait()
        settings = run_settings(session.model, session.mcp_servers)
        reads = bool(self.capabilities.fs and self.capabilities.fs.read_text_file)
        run = AgentRun(
            session_id, asked.text, mode=session.mode, overlay=asked.overlay, settings=settings, client_files=reads
        )
        await self._call(run)
        session.turns += 1
        story = Story(session.root, prefix=f"turn{session.turns}-call-")
        while True:
            event = await events.get()
            if isinstance(event, Finished):
                return await self._finish(session_id, event)
            if isinstance(event, DecisionNeeded):
                await self._decide(session, story, event)
                continue
            if isinstance(event, FileWanted):
                await self._serve_file(session, event)
                continue
            for update in story.updates(event):
                await self.client.session_update(session_id=session_id, update=update)
            await self._mirror(session_id, event)

    async def cancel(self, session_id: str, **_: Any) -> None:
        if session_id in self.sessions:  # a cancel of a finished turn, or of no turn, is nothing to do
            await self._call(AgentCancel(session_id))

    async def authenticate(self, method_id: str, **_: Any) -> None:
        raise _invalid("Cove needs no authentication")

    async def _finish(self, session_id: str, event: Finished) -> schema.PromptResponse:
        if event.stopped == "error":
            raise acp.RequestError(INTERNAL_ERROR, event.error or "the run failed")
        if event.stopped in ("no_plan", "plan_rejected", "todos_open", "max_steps") and not event.answer:
            await self._say(session_id, f"(the run stopped: {event.stopped.replace('_', ' ')})")
        return schema.PromptResponse(stop_reason=STOP_REASONS.get(event.stopped, "end_turn"))

    async def _decide(self, session: FaceSession, story: Story, event: DecisionNeeded) -> None:
        """A decision the run waits for, asked of the user through the client's permission prompt; what they
        allowed always in this session is not asked again."""
        key = _allowance(event)
        if key in session.allowed:
            await self._answer(AgentDecide(session.session_id, event.request_id, True))
            return
        if event.kind == "plan":
            call = update_tool_call(
                f"plan-{event.request_id}", title="Approve the plan", kind="think", status="pending"
            )
            call.content = [
                schema.ContentToolCallContent(
                    type="content", content=schema.TextContentBlock(type="text", text=event.text or "")
                )
            ]
            options = [_option(ALLOW_ONCE, "Approve the plan", "allow_once"), _option(REJECT, "Reject", "reject_once")]
        else:
            call = update_tool_call(story.current or f"ask-{event.request_id}", title=story.title, status="pending")
            options = [
                _option(ALLOW_ONCE, "Allow once", "allow_once"),
                _option(ALLOW_ALWAYS, f"Always allow {key}", "allow_always"),
                _option(REJECT, "Reject", "reject_once"),
            ]
        answer = await self.client.request_permission(session_id=session.session_id, tool_call=call, options=options)
        chosen = answer.outcome.option_id if isinstance(answer.outcome, schema.AllowedOutcome) else REJECT
        if chosen == ALLOW_ALWAYS:
            session.allowed.add(key)
        await self._answer(AgentDecide(session.session_id, event.request_id, chosen in (ALLOW_ONCE, ALLOW_ALWAYS)))

    async def _serve_file(self, session: FaceSession, event: FileWanted) -> None:
        """A file the run reads, as the client has it (an unsaved buffer wins over the disk); None: the disk."""
        text: str | None = None
        try:
            answer = await self.client.read_text_file(
                session_id=session.session_id, path=str(session.root / event.path)
            )
            text = answer.content
        except acp.RequestError as err:  # not open, or not a text file: the daemon reads the disk
            logger.info("the client did not give %s: %s", event.path, err)
        await self._answer(AgentFile(session.session_id, event.request_id, text))

    async def _answer(self, params: AgentDecide | AgentFile) -> None:
        """An answer to what the run asked; the run may have ended meanwhile (cancelled), which is no error."""
        try:
            await self.link.call(params)
        except DaemonError as err:
            logger.info("the run no longer waits for %s: %s", params.method, err)

    async def _mirror(self, session_id: str, event: AgentEvent) -> None:
        """A file the agent changed, written to the client's buffer too where it edits files (the editor shows it)."""
        changes = getattr(event, "changes", None)
        if not changes or not (self.capabilities.fs and self.capabilities.fs.write_text_file):
            return
        root = self.sessions[session_id].root
        for change in changes:
            try:
                await self.client.write_text_file(
                    session_id=session_id, path=str(root / change.path), content=change.after
                )
            except acp.RequestError as err:
                logger.warning("the client did not take the change of %s: %s", change.path, err)

    async def _command(self, session: FaceSession, line: str) -> str:
        name, _, rest = line.partition(" ")
        try:
            if name == "undo":
                return str((await self.link.call(AgentUndo(session.session_id)))["text"])
            if name == "checkpoints":
                found = (await self.link.call(CheckpointList(str(session.root))))["checkpoints"]
                return "\n".join(_checkpoint_line(c) for c in found) or "no checkpoints in this workspace yet"
            if not rest.strip():
                return "/memory WORDS: what Cove remembers about this project that matches the words"
            found = await self.link.call(MemorySearch(rest.strip(), str(session.root)))
            return (
                "\n".join(f"- ({note['kind']}) {note['text']}" for note in found)
                or "Cove remembers nothing that matches"
            )
        except DaemonError as err:
            return f"/{name}: {err}"

    async def _say(self, session_id: str, text: str) -> None:
        await self.client.session_update(session_id=session_id, update=update_agent_message_text(text))

    async def _call(self, params: Any) -> Any:
        try:
            return await self.link.call(params)
        except CoveError as err:
            raise _invalid(str(err)) from None

    def _open(self, session_id: str, root: Path, mcp_servers: list[Any] | None) -> FaceSession:
        try:
            config = load_config(root, os.environ).config
        except ConfigError as err:
            raise _invalid(str(err)) from None
        servers = _mcp_servers(config, mcp_servers or [])
        mode, model = config.agent.mode, default_model(config)
        session = self.sessions[session_id] = FaceSession(session_id, root, config, mode, model, servers)
        asyncio.get_running_loop().call_soon(self._announce, session_id)
        return session

    def _announce(self, session_id: str) -> None:
        commands = [schema.AvailableCommand(name=name, description=text, input=None) for name, text in COMMANDS.items()]
        task = asyncio.ensure_future(self.client.session_update(session_id, update_available_commands(commands)))
        task.add_done_callback(lambda done: done.exception())

    def _session(self, session_id: str) -> FaceSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise _invalid(f"unknown session {session_id!r}: session/new or load")
        return session


def _invalid(message: str) -> acp.RequestError:
    """The error of a request Cove cannot take, saying why (JSON-RPC's invalid params)."""
    return acp.RequestError(INVALID_PARAMS, message)


def _folder(cwd: str) -> Path:
    path = Path(cwd)
    if not path.is_absolute() or not path.is_dir():
        raise _invalid(f"cwd must be an absolute path of a folder: {cwd!r}")
    return path.resolve()


def _mcp_servers(config: CoveConfig, servers: list[Any]) -> tuple[str, ...]:
    """The project's MCP servers and the client's (stdio ones; `[mcp] servers`' form), or () when neither has any."""
    given = [
        f"{server.name} = {shlex.join([server.command, *server.args])}"
        for server in servers
        if isinstance(server, schema.McpServerStdio)
    ]
    if not given:
        return ()
    return (*config.mcp.servers, *given)


def _allowance(event: DecisionNeeded) -> str:
    """What "always allow" covers: the command's program for a command, else the tool."""
    command = (event.arguments or {}).get("command")
    if event.tool == "run_command" and isinstance(command, str) and command.split():
        return f"run_command {command.split()[0]}"
    return event.tool or event.kind


def _checkpoint_line(checkpoint: dict[str, Any]) -> str:
    changed = ", ".join(checkpoint["changed"]) or "no change"
    when = f"{checkpoint['when']} before {checkpoint['tool']} (step {checkpoint['step']})"
    return f"{checkpoint['number']}. {when}: {changed}"


def _option(option_id: str, name: str, kind: schema.PermissionOptionKind) -> schema.PermissionOption:
    return schema.PermissionOption(option_id=option_id, name=name, kind=kind)


def main() -> int:
    """Serve ACP on stdin/stdout until the client closes it; logs go to stderr."""
    logging.basicConfig(level=logging.INFO, format="cove acp: %(message)s")

    async def serve() -> None:
        messages, writer = await guarded_stdio()
        link = DaemonLink("cove-acp")
        try:
            await acp.run_agent(CoveAgent(link), input_stream=writer, output_stream=messages)  # type: ignore[arg-type]
        finally:
            await link.close()

    try:
        asyncio.run(serve())
    except InputError as err:
        print(f"cove acp: {err}", file=sys.stderr)
        return 2
    return 0
