"""The agent daemon: one per user, on a Unix socket, shared by every editor and terminal.

Each client gets its own task, so a slow or stuck client never blocks another. Memory writes run in a worker thread,
off the event loop. The daemon ends on SIGTERM/SIGINT, on a `shutdown` request, or after `idle_timeout` seconds with
no client connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from typing import Any

from cove import __version__
from cove.agent.agent_service import AgentService
from cove.agent.messages import (
    EventPublish,
    InitializeParams,
    MemorySearch,
    MemoryWrite,
    ProposalCreate,
    ProposalDecision,
    ProposalList,
    SessionCreate,
    SessionEvent,
    SessionList,
    SessionRef,
    SessionSend,
)
from cove.agent.mqtt_bridge import MqttBridge
from cove.agent.protocol import (
    METHOD_NOT_FOUND,
    NOT_INITIALIZED,
    PROTOCOL_VERSION,
    ProtocolError,
    Request,
    encode_frame,
    error_response,
    notification,
    parse_params,
    parse_request,
    read_frame,
    response,
)
from cove.agent.reminders import Event
from cove.agent.sessions import (
    SessionHub,
    append_project_memory,
    event_from_payload,
    outside_event,
    reminder_payload,
)
from cove.agent.store import MemoryStore, Scope
from cove.config import CoveConfig
from cove.errors import ConfigError, CoveError
from cove.runtime import DaemonPaths, take_lock

logger = logging.getLogger(__name__)


class Client:
    """One connection: its writer, and whether it has done the handshake."""

    def __init__(self, writer: asyncio.StreamWriter, remote: bool = False) -> None:
        self.writer = writer
        self.remote = remote
        self.initialized = False
        self.name = "unknown"
        self.subscribed = False

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))
        await self.writer.drain()


class Daemon:
    """Serves the protocol in docs/protocol.md."""

    def __init__(
        self,
        paths: DaemonPaths,
        store: MemoryStore,
        idle_timeout: float = 600.0,
        config: CoveConfig | None = None,
    ) -> None:
        config = config or CoveConfig()
        self.listen = config.daemon
        if self.listen.tcp_listen and not self.listen.token:
            raise ConfigError("daemon.tcp_listen is set but daemon.token is empty; remote clients need a token")
        self.paths = paths
        self.hub = SessionHub(store, config.reminders)
        events = config.events
        self.bridge = MqttBridge(events, self._outside, self._status_payload) if events.mqtt_host else None
        self.store = store
        self.idle_timeout = idle_timeout
        self.started = time.time()
        self.clients: set[Client] = set()
        self._stop = asyncio.Event()
        self._last_seen = time.monotonic()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._client_tasks: set[asyncio.Task[Any]] = set()
        self._methods: dict[str, Callable[[Client, Request], Awaitable[Any]]] = {
            "initialize": self._initialize,
            "status": self._status,
            "shutdown": self._shutdown,
            "session/create": self._session_create,
            "session/list": self._session_list,
            "session/resume": self._session_resume,
            "session/close": self._session_close,
            "session/send": self._session_send,
            "session/event": self._session_event,
            "memory/write": self._memory_write,
            "memory/propose": self._memory_propose,
            "memory/proposals": self._memory_proposals,
            "memory/decide": self._memory_decide,
            "memory/search": self._memory_search,
            "events/subscribe": self._events_subscribe,
            "events/publish": self._events_publish,
        }
        self.agents = AgentService(store, self._deliver_agent_event)
        self._methods.update(self.agents.methods())
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self) -> None:
        """Listen until stopped; the socket file is removed on the way out."""
        loop = self._loop = asyncio.get_running_loop()
        # Before the socket exists: a client that sees the socket may already send SIGTERM.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        self.paths.socket.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self._serve_client, path=str(self.paths.socket))
        self.paths.socket.chmod(0o600)
        if self.listen.tcp_listen:
            host, _, port = self.listen.tcp_listen.rpartition(":")
            try:
                tcp = await asyncio.start_server(self._serve_remote, host or "127.0.0.1", int(port))
            except (OSError, ValueError) as err:
                raise ConfigError(f"daemon.tcp_listen {self.listen.tcp_listen!r}: cannot listen ({err})") from err
            logger.info("listening on tcp %s (token required)", self.listen.tcp_listen)
        watcher = asyncio.create_task(self._watch_idle())
        bridge = asyncio.create_task(self.bridge.run()) if self.bridge else None
        logger.info("listening on %s", self.paths.socket)
        try:
            await self._stop.wait()
        finally:
            watcher.cancel()
            if self.listen.tcp_listen:
                tcp.close()
            if bridge is not None:
                bridge.cancel()
                await asyncio.gather(bridge, return_exceptions=True)
            server.close()
            for task in list(self._client_tasks):
                task.cancel()
            await asyncio.gather(*self._client_tasks, return_exceptions=True)
            self.paths.socket.unlink(missing_ok=True)
            logger.info("stopped")

    async def _watch_idle(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout))
            if self.agents.active():
                self._last_seen = time.monotonic()  # a run working for no client still keeps the daemon up
            elif not self.clients and time.monotonic() - self._last_seen > self.idle_timeout:
                logger.info("idle for %.0f s; stopping", self.idle_timeout)
                self._stop.set()

    async def _serve_remote(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve_client(reader, writer, remote=True)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: bool = False
    ) -> None:
        client = Client(writer, remote)
        self.clients.add(client)
        task = asyncio.current_task()
        if task is not None:
            self._client_tasks.add(task)
        try:
            while not self._stop.is_set():
                try:
                    body = await read_frame(reader)
                    if body is None:
                        break
                    request = parse_request(body)
                except ProtocolError as err:
                    await client.send(error_response(None, err.rpc_code, str(err)))
                    if err.fatal:
                        break
                    continue
                await self._answer(client, request)
                if client.remote and not client.initialized:
                    break  # a remote client gets one chance to present the token
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the daemon is stopping; nothing of its state needs saving
        finally:
            self.clients.discard(client)
            if task is not None:
                self._client_tasks.discard(task)
            self._last_seen = time.monotonic()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, client: Client, request: Request) -> None:
        try:
            handler = self._methods.get(request.method)
            if handler is None:
                raise ProtocolError(f"unknown method {request.method!r}", METHOD_NOT_FOUND)
            if not client.initialized and request.method != "initialize":
                raise ProtocolError("send initialize first", NOT_INITIALIZED)
            result = await handler(client, request)
            reply = response(request.id, result)
        except CoveError as err:
            reply = error_response(request.id, err.rpc_code, str(err))
        except Exception as err:  # a bug must cost one request, never the daemon
            logger.exception("request %s failed", request.method)
            reply = error_response(request.id, -32603, f"internal error: {err}")
        if request.id is not None:
            await client.send(reply)

    async def _initialize(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(InitializeParams, request.params, request.method)
        if client.remote and not hmac.compare_digest((params.token or "").encode(), self.listen.token.encode()):
            raise ProtocolError("a valid token is required on the TCP listener", -32001)
        if params.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version {params.protocol_version} is not supported (this daemon speaks "
                f"{PROTOCOL_VERSION}); update the client or the daemon",
                -32602,
            )
        client.initialized, client.name = True, params.client
        return {"protocol_version": PROTOCOL_VERSION, "server": "cove-daemon", "version": __version__}

    def _status_payload(self) -> dict[str, Any]:
        return {"state": "running", "pid": os.getpid(), "version": __version__, "clients": len(self.clients)}

    async def _status(self, client: Client, request: Request) -> dict[str, Any]:
        return {
            "mqtt": None if self.bridge is None else self.bridge.connected.is_set(),
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
            "clients": len(self.clients),
            "socket": str(self.paths.socket),
            "database": str(self.store.path),
            "schema_version": self.store.schema_version,
        }

    async def _shutdown(self, client: Client, request: Request) -> None:
        asyncio.get_running_loop().call_soon(self._stop.set)

    async def _session_create(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(SessionCreate, request.params, request.method)
        session = await asyncio.to_thread(self.store.create_session, params.project, params.title)
        await asyncio.to_thread(self.hub.open, session)
        if self.bridge is not None:
            event = {"event": "created", "session_id": session.id, "project": session.project}
            self._spawn(self.bridge.publish(self.bridge.sessions_topic, event))
        return asdict(session)

    async def _session_list(self, client: Client, request: Request) -> list[dict[str, Any]]:
        params = parse_params(SessionList, request.params, request.method)
        sessions = await asyncio.to_thread(self.store.sessions, params.project, params.include_closed)
        return [asdict(session) for session in sessions]

    async def _session_resume(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(SessionRef, request.params, request.method)
        session = await asyncio.to_thread(self.store.session, params.session_id)
        self.hub.attach(session.id)
        messages = await asyncio.to_thread(self.store.transcript, params.session_id)
        return {"session": asdict(session), "transcript": [asdict(m) for m in messages]}

    async def _session_close(self, client: Client, request: Request) -> None:
        params = parse_params(SessionRef, request.params, request.method)
        await asyncio.to_thread(self.store.close_session, params.session_id)
        self.hub.close(params.session_id)

    async def _session_send(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(SessionSend, request.params, request.method)
        message_id = await asyncio.to_thread(self.store.append_message, params.session_id, "user", params.text)
        await client.send(
            notification("agent/event", {"session_id": params.session_id, "type": "message", "id": message_id})
        )
        return {"message_id": message_id}

    async def _session_event(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(SessionEvent, request.params, request.method)
        event = event_from_payload(params.type, params.data)
        inbox = self.agents.inbox(params.session_id)
        if inbox is not None:  # a run is working in this session: its own reminders take the event
            inbox.put(event)
            return {"reminders": [], "queued": True}
        written = await asyncio.to_thread(self.hub.feed, params.session_id, event)
        payloads = [reminder_payload(params.session_id, ident, reminder) for ident, reminder in written]
        for payload in payloads:
            await client.send(notification("agent/event", payload))
        return {"reminders": payloads}

    async def _memory_write(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(MemoryWrite, request.params, request.method)
        try:
            scope = Scope(params.scope)
        except ValueError:
            raise ProtocolError(
                f"memory/write: scope must be 'user' or 'project', got {params.scope!r}", -32602
            ) from None
        note = await asyncio.to_thread(self.store.write_note, scope, params.project, params.kind, params.text)
        return asdict(note)

    async def _memory_propose(self, client: Client, request: Request) -> dict[str, Any]:
        params = parse_params(ProposalCreate, request.params, request.method)
        return asdict(await asyncio.to_thread(self.store.propose, params.project, params.text))

    async def _memory_proposals(self, client: Client, request: Request) -> list[dict[str, Any]]:
        params = parse_params(ProposalList, request.params, request.method)
        return [asdict(p) for p in await asyncio.to_thread(self.store.proposals, params.project)]

    async def _memory_decide(self, client: Client, request: Request) -> dict[str, Any]:
        """The user's decision on a proposal; an accepted one is appended to the project's COVE.md."""
        params = parse_params(ProposalDecision, request.params, request.method)
        proposal = await asyncio.to_thread(self.store.decide, params.proposal_id, params.accept)
        if params.accept:
            await asyncio.to_thread(append_project_memory, proposal.project, proposal.text)
        return asdict(proposal)

    async def _memory_search(self, client: Client, request: Request) -> list[dict[str, Any]]:
        params = parse_params(MemorySearch, request.params, request.method)
        notes = await asyncio.to_thread(self.store.search_notes, params.query, params.project, params.limit)
        return [asdict(note) for note in notes]

    async def _events_subscribe(self, client: Client, request: Request) -> None:
        client.subscribed = True

    async def _events_publish(self, client: Client, request: Request) -> dict[str, int]:
        params = parse_params(EventPublish, request.params, request.method)
        return {"delivered": self._outside(params.topic, params.payload, exclude=client)}

    def _outside(self, topic: str, payload: dict[str, Any], exclude: Client | None = None) -> int:
        """An event from outside (MQTT, events/publish): to subscribers, and to every live session's reminders."""
        if self.hub.live:
            self._spawn(self._remind_all(outside_event(topic, payload)))
        return self.broadcast(topic, payload, exclude)

    async def _remind_all(self, event: Event) -> None:
        written = await asyncio.to_thread(self.hub.feed_all, event)
        for session_id, reminders in written.items():
            for ident, reminder in reminders:
                message = notification("agent/event", reminder_payload(session_id, ident, reminder))
                for target in [c for c in self.clients if c.subscribed]:
                    self._spawn(_send_quietly(target, message))

    def broadcast(self, topic: str, payload: dict[str, Any], exclude: Client | None = None) -> int:
        """Send an event to every subscribed client (but `exclude`); returns how many it went to."""
        message = notification("events/notify", {"topic": topic, "payload": payload})
        targets = [c for c in self.clients if c.subscribed and c is not exclude]
        for target in targets:
            # A subscriber that does not read must not hold up the publisher: its send runs on its own.
            self._spawn(_send_quietly(target, message))
        return len(targets)

    def _deliver_agent_event(self, owner: Client | None, params: dict[str, Any]) -> None:
        """An agent run's event, from its worker thread, to the client that started it and every subscriber."""
        message = notification("agent/event", params)

        def send() -> None:
            for target in {c for c in self.clients if c.subscribed or c is owner}:
                self._spawn(_send_quietly(target, message))

        if self._loop is not None:
            self._loop.call_soon_threadsafe(send)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)


async def _send_quietly(client: Client, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await asyncio.wait_for(client.send(message), timeout=5)


def run_daemon(paths: DaemonPaths, idle_timeout: float, config: CoveConfig) -> None:
    """Take the lock, open the memory, and serve until stopped."""
    lock = take_lock(paths)
    try:
        store = MemoryStore(paths.database)
        try:
            asyncio.run(Daemon(paths, store, idle_timeout, config).serve())
        finally:
            store.close()
    finally:
        lock.close()
