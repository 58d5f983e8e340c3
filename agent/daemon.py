"""The agent daemon: one per user, on a Unix socket, shared by every editor and terminal.

A transport and its services. The transport reads frames, parses each request's params into the type its method
declares, dispatches to the service that registered the method, and writes the reply; the services (sessions,
memory, events, agent runs) hold the logic and are testable without a socket. Each client gets its own task, so a
slow or stuck client never blocks another. The daemon ends on SIGTERM/SIGINT, on a `shutdown` request, or after
`idle_timeout` seconds with no client connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from cove import __version__
from cove.agent.agent_service import AgentService
from cove.agent.checkpoint_service import CheckpointService
from cove.agent.clients import Client, Clients
from cove.agent.event_service import EventService
from cove.agent.index_service import IndexService
from cove.agent.memory_service import MemoryService
from cove.agent.model_service import ModelService
from cove.agent.mqtt_bridge import MqttBridge
from cove.agent.service import Method
from cove.agent.session_service import SessionService
from cove.agent.sessions import SessionHub
from cove.agent.store import MemoryStore
from cove.config import CoveConfig
from cove.errors import ConfigError, CoveError
from cove.protocol.codec import structure
from cove.protocol.codes import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, NOT_INITIALIZED, UNAUTHORIZED
from cove.protocol.framing import (
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    Request,
    error_response,
    notification,
    parse_request,
    read_frame,
    response,
)
from cove.protocol.params import InitializeParams, ModelSpec, ShutdownParams, StatusParams
from cove.runtime import DaemonPaths, take_lock

if TYPE_CHECKING:
    from cove.agent.model_host import ModelHost
    from cove.inference.chat.chat_model import ChatModel

logger = logging.getLogger(__name__)


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
        self.paths, self.store, self.idle_timeout = paths, store, idle_timeout
        self.config = config
        self._host_lock = threading.Lock()
        self.started = time.time()
        self.clients = Clients()
        hub = SessionHub(store, config.reminders)
        self.events = EventService(self.clients, hub)
        self.bridge = (
            MqttBridge(config.events, self.events.outside, self._status_payload) if config.events.mqtt_host else None
        )
        self._host: ModelHost | None = None
        self.completions = ModelService(self._model_host)
        self.indexes = IndexService(paths.data)
        self.agents = AgentService(store, self._deliver_agent_event, self._chat_model, self.indexes.search_code)
        self.sessions = SessionService(store, hub, self.agents.inbox, self._announce)
        self._stop = asyncio.Event()
        self._last_seen = time.monotonic()
        self._client_tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        core = [
            Method(InitializeParams, self._initialize),
            Method(StatusParams, self._status),
            Method(ShutdownParams, self._shutdown),
        ]
        checkpoints = CheckpointService(self.agents.running_in)
        services = (
            self.sessions,
            MemoryService(store),
            self.events,
            self.agents,
            self.completions,
            checkpoints,
            self.indexes,
        )
        self.methods: dict[str, Method] = {m.name: m for m in core + [m for s in services for m in s.methods()]}

    async def serve(self) -> None:
        """Listen until stopped; the socket file is removed on the way out."""
        loop = self._loop = asyncio.get_running_loop()
        # Before the socket exists: a client that sees the socket may already send SIGTERM.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        self.paths.socket.unlink(missing_ok=True)
        # The stream's limit bounds what readuntil buffers while looking for the end of a header.
        server = await asyncio.start_unix_server(
            self._serve_client, path=str(self.paths.socket), limit=MAX_HEADER_BYTES
        )
        self.paths.socket.chmod(0o600)
        if self.listen.tcp_listen:
            host, _, port = self.listen.tcp_listen.rpartition(":")
            try:
                tcp = await asyncio.start_server(
                    self._serve_remote, host or "127.0.0.1", int(port), limit=MAX_HEADER_BYTES
                )
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
            await asyncio.to_thread(self.indexes.close)
            logger.info("stopped")

    def _model_host(self) -> ModelHost:
        """The local models of completions and the agent (the model runtime imported on first use)."""
        with self._host_lock:
            if self._host is None:
                from cove.agent.model_host import ModelHost

                self._host = ModelHost(self.config)
            return self._host

    def _chat_model(self, config: CoveConfig) -> ChatModel:
        """The local model a run's config names, as a chat model: the host's, shared with completions."""
        return self._model_host().model(ModelSpec.of(config))

    async def _watch_idle(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout))
            if self._host is not None:
                await asyncio.to_thread(self._host.unload_idle)
            if self.agents.active():
                self._last_seen = time.monotonic()  # a run working for no client still keeps the daemon up
            elif not self.clients.connected and time.monotonic() - self._last_seen > self.idle_timeout:
                logger.info("idle for %.0f s; stopping", self.idle_timeout)
                self._stop.set()

    async def _serve_remote(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve_client(reader, writer, remote=True)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: bool = False
    ) -> None:
        client = Client(writer, remote)
        self.clients.connected.add(client)
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
                    await client.send(error_response(err.request_id, err.rpc_code, str(err)))
                    if err.fatal:
                        break
                    continue
                method = self.methods.get(request.method)
                if method is not None and method.concurrent and client.initialized:
                    self.clients.spawn(self._answer(client, request))
                else:
                    await self._answer(client, request)
                if client.remote and not client.initialized:
                    break  # a remote client gets one chance to present the token
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the daemon is stopping; nothing of its state needs saving
        finally:
            self.clients.connected.discard(client)
            if task is not None:
                self._client_tasks.discard(task)
            self._last_seen = time.monotonic()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, client: Client, request: Request) -> None:
        try:
            method = self.methods.get(request.method)
            if method is None:
                raise ProtocolError(f"unknown method {request.method!r}", METHOD_NOT_FOUND)
            if not client.initialized and method.params is not InitializeParams:
                raise ProtocolError("send initialize first", NOT_INITIALIZED)
            params = structure(method.params, request.params, request.method)
            handled = (
                method.handler(client, params, request.id) if method.concurrent else method.handler(client, params)
            )
            reply = response(request.id, await handled)
        except CoveError as err:
            reply = error_response(request.id, err.rpc_code, str(err))
        except Exception as err:  # a bug must cost one request, never the daemon
            logger.exception("request %s failed", request.method)
            reply = error_response(request.id, INTERNAL_ERROR, f"internal error: {err}")
        if request.id is not None:
            await client.send(reply)

    async def _initialize(self, client: Client, params: InitializeParams) -> dict[str, Any]:
        if client.remote and not hmac.compare_digest((params.token or "").encode(), self.listen.token.encode()):
            raise ProtocolError("a valid token is required on the TCP listener", UNAUTHORIZED)
        if params.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version {params.protocol_version} is not supported (this daemon speaks "
                f"{PROTOCOL_VERSION}); update the client or the daemon",
                INVALID_PARAMS,
            )
        client.initialized, client.name = True, params.client
        return {"protocol_version": PROTOCOL_VERSION, "server": "cove-daemon", "version": __version__}

    def _status_payload(self) -> dict[str, Any]:
        return {"state": "running", "pid": os.getpid(), "version": __version__, "clients": len(self.clients.connected)}

    async def _status(self, client: Client, params: StatusParams) -> dict[str, Any]:
        return {
            "mqtt": None if self.bridge is None else self.bridge.connected.is_set(),
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
            "clients": len(self.clients.connected),
            "socket": str(self.paths.socket),
            "database": str(self.store.path),
            "schema_version": self.store.schema_version,
            "completions": self.completions.status(self._host is not None),
            "agent_runs": self.agents.in_progress(),
        }

    async def _shutdown(self, client: Client, params: ShutdownParams) -> None:
        asyncio.get_running_loop().call_soon(self._stop.set)

    def _announce(self, event: dict[str, Any]) -> None:
        if self.bridge is not None:
            self.clients.spawn(self.bridge.publish(self.bridge.sessions_topic, event))

    def _deliver_agent_event(self, owner: Client | None, params: dict[str, Any]) -> None:
        """An agent run's event, from its worker thread, to the client that started it and every subscriber."""
        message = notification("agent/event", params)

        def send() -> None:
            targets = {c for c in self.clients.connected if c.subscribed or c is owner}
            self.clients.send(targets, message)

        if self._loop is not None:
            self._loop.call_soon_threadsafe(send)


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
