"""Run blocking work so that, per key, only the newest call finishes; older ones are cancelled at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")


class LatestOnly:
    """Per key (a document), a newer call cancels the one still running: its task and its worker's stop flag.

    No delay is added: a request starts at once and is cancelled only when a newer one for the same key arrives or
    the client cancels it. The blocking function receives a `threading.Event` that it checks between steps.
    """

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._running: dict[str, tuple[asyncio.Task[object], threading.Event]] = {}

    def cancel(self, key: str) -> None:
        """Cancel the call running for `key`, if any."""
        running = self._running.pop(key, None)
        if running is not None:
            task, stop = running
            stop.set()
            task.cancel()

    async def run(self, key: str, work: Callable[[threading.Event], T]) -> T:
        """Run `work` in the executor as the newest call for `key`; raises CancelledError when superseded."""
        task = asyncio.current_task()
        assert task is not None, "LatestOnly.run must be awaited inside a task"
        self.cancel(key)
        stop = threading.Event()
        self._running[key] = (task, stop)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, stop)
        except asyncio.CancelledError:
            stop.set()
            raise
        finally:
            if self._running.get(key, (None, None))[0] is task:
                del self._running[key]
