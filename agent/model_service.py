"""The daemon's completion methods: every editor window's completions from the host's model it asks for.

`complete/generate` and `complete/warm` run on worker threads and take the model in turns (inference/resident.py);
they are answered out of order, so that a `complete/cancel` for a running request is read and acted on while it runs
(generation stops between two tokens). A client that goes away has its requests stopped the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cove.agent.clients import Client
from cove.agent.service import Method
from cove.protocol.codec import unstructure
from cove.protocol.framing import notification
from cove.protocol.params import (
    COMPLETE_LOADING,
    COMPLETE_TEXT,
    CompleteCancel,
    CompleteForget,
    CompleteGenerate,
    CompleteLoad,
    CompleteWarm,
    ModelSpec,
)

if TYPE_CHECKING:
    from cove.agent.model_host import ModelHost
    from cove.inference.resident import ResidentModel


class ModelService:
    """`host()` gives the daemon's models (built on first use: the model runtime is imported only then)."""

    def __init__(self, host: Callable[[], ModelHost]) -> None:
        self._host = host
        self._running: dict[tuple[int, int], threading.Event] = {}
        self.served = 0

    def methods(self) -> list[Method]:
        return [
            Method(CompleteGenerate, self._generate, concurrent=True),
            Method(CompleteWarm, self._warm, concurrent=True),
            Method(CompleteCancel, self._cancel),
            Method(CompleteForget, self._forget),
            Method(CompleteLoad, self._load, concurrent=True),
        ]

    def status(self, built: bool) -> dict[str, Any]:
        """What `status` says of completions: whether a model is loaded, the one used last, how often models were
        loaded, requests served, and each model the host holds (`models`)."""
        if not built:
            return {"loaded": False, "loads": 0, "served": self.served, "models": []}
        host = self._host()
        models = host.models()
        last = models[-1][1] if models else None
        return {
            "loaded": any(resident.loaded for _, resident in models),
            "model": last.describe() if last is not None else "",
            "loads": sum(resident.loads for _, resident in models),
            "served": self.served,
            "preemptions": sum(resident.preemptions for _, resident in models),
            "models": host.status(),
            "memory_mib": round(host.held_bytes() / (1 << 20), 1),
            "budget_mib": host.budget_bytes >> 20,
            "evictions": host.evictions,
        }

    async def _generate(self, client: Client, params: CompleteGenerate, request_id: int | None = None) -> Any:
        loop = asyncio.get_running_loop()
        sent: list[asyncio.Task[None]] = []

        def on_text(text: str) -> None:  # the text so far, in order, while the request runs (a keystroke shows it)
            message = notification(COMPLETE_TEXT, {"request_id": request_id, "text": text})
            loop.call_soon_threadsafe(lambda: sent.append(loop.create_task(_send_quietly(client, message))))

        streamed = on_text if request_id is not None else None
        generated = await self._run(
            client, request_id, params.model, lambda r, stop: r.generate(params.job, stop, streamed)
        )
        await asyncio.gather(*sent)  # the text so far goes before the reply
        self.served += 1
        return unstructure(generated)

    async def _warm(self, client: Client, params: CompleteWarm, request_id: int | None = None) -> Any:
        return unstructure(await self._run(client, request_id, params.model, lambda r, stop: r.warm(params.job, stop)))

    async def _run(
        self,
        client: Client,
        request_id: int | None,
        spec: ModelSpec | None,
        work: Callable[[ResidentModel, Callable[[], bool]], Any],
    ) -> Any:
        cancel = threading.Event()
        key = (id(client), request_id if request_id is not None else -1)
        if request_id is not None:
            self._running[key] = cancel

        def stop_requested() -> bool:
            return cancel.is_set() or client.writer.is_closing()

        resident = self._host().model(spec)
        if not resident.loaded:  # a second or so: the client may show it (after `[model] idle_unload_s`, say)
            await client.send(notification(COMPLETE_LOADING, {"model": resident.path_hint}))

        try:  # a stopped one raises Cancelled, answered as RequestCancelled
            return await asyncio.to_thread(lambda: work(resident, stop_requested))
        finally:
            if self._running.get(key) is cancel:
                del self._running[key]

    async def _cancel(self, client: Client, params: CompleteCancel) -> dict[str, bool]:
        cancel = self._running.get((id(client), params.request_id))
        if cancel is not None:
            cancel.set()
        return {"cancelled": cancel is not None}

    async def _load(self, client: Client, params: CompleteLoad, request_id: int | None = None) -> dict[str, Any]:
        resident = self._host().model(params.model)
        loaded_now = await asyncio.to_thread(resident.load)
        return {"model": resident.describe(), "path": resident.path_hint, "loaded_now": loaded_now}

    async def _forget(self, client: Client, params: CompleteForget) -> None:
        await asyncio.to_thread(self._host().forget, params.document)


async def _send_quietly(client: Client, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):  # a client gone: its request is being stopped
        await client.send(message)
