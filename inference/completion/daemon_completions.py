"""Completions from the per-user daemon's resident model: every editor window's language server is a client of it,
so the weights are loaded once per user, not once per window (`[routing] complete = ["daemon", "local"]`).

The language server keeps what is cheap and per-editor (document sync, serving the rest of a suggestion while it is
typed, the newest request per document); the daemon keeps the model and every document's KV state. A request whose
`stop_requested()` turns true is cancelled across the socket (`complete/cancel`; the daemon stops between two
tokens). The daemon is started when absent; when it cannot be reached the request fails with ModelError, so the
routing passes over it to the next target, and it is started again in the background.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from cove.daemon_client import DaemonClient, ensure_daemon
from cove.errors import Cancelled, CoveError, DaemonError, DaemonUnavailable, ModelError, ModelRefused
from cove.protocol.codec import converter
from cove.protocol.codes import REQUEST_CANCELLED
from cove.protocol.framing import result_of
from cove.protocol.jobs import Generated, GenerationJob, Warmed
from cove.protocol.params import (
    COMPLETE_LOADING,
    COMPLETE_TEXT,
    CompleteCancel,
    CompleteForget,
    CompleteGenerate,
    CompleteLoad,
    CompleteWarm,
    ModelSpec,
    Params,
    StatusParams,
)
from cove.runtime import DaemonPaths

logger = logging.getLogger(__name__)

#: Seconds between two checks of `stop_requested` while a reply is awaited (a cancel is sent at most this late).
POLL_S = 0.005


class HostLoading:
    """The host's `complete/loading` notifications, for whoever shows them: one subscriber per process (the language
    server subscribes once; a request's wait for the model is shown until it is answered)."""

    def __init__(self) -> None:
        self._show: Callable[[str], Callable[[], None]] | None = None

    def subscribe(self, show: Callable[[str], Callable[[], None]]) -> None:
        """`show(model)` is called (from the requesting thread) when the host loads `model` for a request; what it
        returns is called once the request is answered."""
        self._show = show

    def begin(self, model: str) -> Callable[[], None]:
        return self._show(model) if self._show is not None else lambda: None


#: The host's loading notifications in this process.
HOST_LOADING = HostLoading()


class DaemonCompletions:
    """A completion backend over the daemon's socket; blocking, one request at a time (the engine's model thread)."""

    name = "daemon"

    def __init__(
        self,
        paths: DaemonPaths,
        spec: ModelSpec | None = None,
        connect: Callable[[DaemonPaths], DaemonClient] = lambda paths: ensure_daemon(paths, timeout=30.0),
        first_connect_s: float = 30.0,
    ) -> None:
        self.paths = paths
        #: The model asked of the host (None: the daemon's own config's).
        self.spec = spec
        self._connect_to = connect
        #: How long the first request waits for the daemon to start (later, a lost daemon is passed over at once).
        self.first_connect_s = first_connect_s
        self._client: DaemonClient | None = None
        self._connecting: Future[DaemonClient] | None = None
        self._ever_connected = False
        self._lock = threading.Lock()
        #: The daemon's model as it described it, and its file (after `load`).
        self.model = ""
        self.path = ""

    def describe(self) -> str:
        model = f"{self.model}; " if self.model else ""
        return f"the Cove daemon's model ({model}{self.paths.socket})"

    def load(self) -> None:
        """Have the daemon load its model now (starting the daemon first when absent); ModelError if it cannot."""
        loaded = self._request(CompleteLoad(self.spec), lambda: False)
        self.model = str(loaded.get("model", "")).removeprefix("the local model (").removesuffix(")")
        self.path = str(loaded.get("path", ""))

    def probe(self) -> str:
        """Whether the daemon answers (starting it when absent), whether its model is loaded, and the round trip."""
        started = time.perf_counter()
        status = self._request(StatusParams(), lambda: False)
        seconds = time.perf_counter() - started
        return f"daemon pid {status.get('pid')}, {self.hosted(status)}, round trip {seconds * 1000:.1f} ms"

    def hosted(self, status: dict[str, Any]) -> str:
        """Whether the daemon (its `status` reply) holds the model this client asks for."""
        spec = self.spec or ModelSpec()
        path, n_ctx = spec.model.path or "the default model", spec.model.n_ctx
        models = (status.get("completions") or {}).get("models") or []
        held = [m for m in models if m.get("path") == path and m.get("n_ctx") == n_ctx and m.get("loaded")]
        state = "loaded" if held else "not loaded yet"
        return f"this project's model {path} (n_ctx {n_ctx}) {state} ({len(models)} model(s) in the daemon)"

    def start(self) -> None:
        """Connect in the background (starting the daemon when absent), ahead of the first request."""
        with self._lock:
            self._start_connecting()

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        return converter.structure(self._request(CompleteGenerate(job, self.spec), stop_requested, on_text), Generated)

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        try:
            return converter.structure(self._request(CompleteWarm(job, self.spec), stop_requested), Warmed)
        except ModelError:
            return Warmed(0, False)

    def forget(self, document: str) -> None:
        try:
            self._request(CompleteForget(document), lambda: False)
        except CoveError as err:
            logger.debug("complete/forget: %s", err)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _request(
        self, params: Params, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None = None
    ) -> Any:
        with self._lock:
            client = self._ready()
            try:
                return _exchange(client, params, stop_requested, on_text)
            except DaemonError as err:
                if err.rpc_code == REQUEST_CANCELLED:
                    raise Cancelled(str(err)) from None
                raise ModelRefused(f"the Cove daemon refused {params.method}: {err}") from err
            except (DaemonUnavailable, OSError) as err:
                client.close()
                self._client = None
                self._start_connecting()  # started again in the background; meanwhile the next target serves
                raise ModelError(f"the Cove daemon went away ({err}); restarting it") from err

    def _ready(self) -> DaemonClient:
        """The connection; the first time, wait for the daemon to start; later, do not wait for a restart."""
        if self._client is not None:
            return self._client
        connecting = self._start_connecting()
        try:
            client = connecting.result(timeout=0 if self._ever_connected else self.first_connect_s)
        except FutureTimeout:
            raise ModelError("the Cove daemon is still starting") from None
        except CoveError as err:
            self._connecting = None
            raise ModelError(f"the Cove daemon cannot be started: {err}") from err
        finally:
            if connecting.done():
                self._connecting = None
        self._client = client
        self._ever_connected = True
        return client

    def _start_connecting(self) -> Future[DaemonClient]:
        if self._connecting is None:
            future: Future[DaemonClient] = Future()

            def connect() -> None:
                try:
                    client = self._connect_to(self.paths)
                    client.set_timeout(POLL_S)
                    future.set_result(client)
                except CoveError as err:
                    future.set_exception(err)

            self._connecting = future
            threading.Thread(target=connect, name="cove-daemon-connect", daemon=True).start()
        return self._connecting


def _exchange(
    client: DaemonClient,
    params: Params,
    stop_requested: Callable[[], bool],
    on_text: Callable[[str], None] | None = None,
) -> Any:
    """Send `params` and wait for its reply, cancelling it once `stop_requested()`; `complete/loading` goes to
    HOST_LOADING, this request's `complete/text` to `on_text`, other messages are dropped."""
    ident = client.send_request(params)
    cancelled = False
    loaded: Callable[[], None] | None = None
    try:
        while True:
            if not cancelled and stop_requested():
                client.send_request(CompleteCancel(ident))
                cancelled = True
            try:
                message = client.receive()
            except TimeoutError:
                continue
            method = message.get("method")
            if method == COMPLETE_LOADING and loaded is None:
                model = (message.get("params") or {}).get("model")
                loaded = HOST_LOADING.begin(model if isinstance(model, str) else "the model")
            elif method == COMPLETE_TEXT and on_text is not None:
                params_of = message.get("params") or {}
                if params_of.get("request_id") == ident and isinstance(params_of.get("text"), str):
                    on_text(params_of["text"])
            if message.get("id") == ident:
                return result_of(message)
    finally:
        if loaded is not None:
            loaded()
