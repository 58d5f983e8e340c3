"""The daemon's completion methods: every editor window's completions from the one resident model.

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
)

if TYPE_CHECKING:
    from cove.inference.resident import ResidentModel


class CompletionService:
    """`resident()` gives the daemon's model (built on first use; loading it is the model's own business)."""

    def __init__(self, resident: Callable[[], ResidentModel]) -> None:
        self._resident = resident
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

    def status(self, loaded: bool) -> dict[str, Any]:
        """What `status` says of completions: whether the model is loaded, how often it was, requests served."""
        if not loaded:
            return {"loaded": False, "loads": 0, "served": self.served}
        resident = self._resident()
        return {
            "loaded": resident.loaded,
            "model": resident.describe(),
            "loads": resident.loads,
            "served": self.served,
            "preemptions": resident.preemptions,
        }

    async def _generate(self, client: Client, params: CompleteGenerate, request_id: int | None = None) -> Any:
        loop = asyncio.get_running_loop()
        sent: list[asyncio.Task[None]] = []

        def on_text(text: str) -> None:  # the text so far, in order, while the request runs (a keystroke shows it)
            message = notification(COMPLETE_TEXT, {"request_id": request_id, "text": text})
            loop.call_soon_threadsafe(lambda: sent.append(loop.create_task(_send_quietly(client, message))))

        streamed = on_text if request_id is not None else None
        generated = await self._run(client, request_id, lambda r, stop: r.generate(params.job, stop, streamed))
        await asyncio.gather(*sent)  # the text so far goes before the reply
        self.served += 1
        return unstructure(generated)

    async def _warm(self, client: Client, params: CompleteWarm, request_id: int | None = None) -> Any:
        return unstructure(await self._run(client, request_id, lambda r, stop: r.warm(params.job, stop)))

    async def _run(
        self, client: Client, request_id: int | None, work: Callable[[ResidentModel, Callable[[], bool]], Any]
    ) -> Any:
        cancel = threading.Event()
        key = (id(client), request_id if request_id is not None else -1)
        if request_id is not None:
            self._running[key] = cancel

        def stop_requested() -> bool:
            return cancel.is_set() or client.writer.is_closing()

        resident = self._resident()
        if not resident.loaded:  # a second or so: the client may show it (after `[model] idle_unload_s`, say)
            await client.send(
                notification(COMPLETE_LOADING, {"model": resident.model_config.path or "the default model"})
            )

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
        resident = self._resident()
        loaded_now = await asyncio.to_thread(resident.load)
        return {"model": resident.describe(), "loaded_now": loaded_now}

    async def _forget(self, client: Client, params: CompleteForget) -> None:
        await asyncio.to_thread(self._resident().forget, params.document)


async def _send_quietly(client: Client, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):  # a client gone: its request is being stopped
        await client.send(message)
