"""The language server's side of the project's code index, which lives in the daemon (agent/code_index.py).

On `initialized` the server opens the project's index (`index/open`: the daemon builds it in the background) and
shows the build as `$/progress` until it is done; saves are sent as `index/update`. For completions it keeps the
definitions it has fetched, by name: `definitions` answers from that memory at once, and asks the daemon in the
background for the names it does not know yet — a keystroke never waits on the socket; a completion that comes
before the daemon's answer has no index context rather than a slow suggestion. The BM25 neighbours of a window are
asked once per window anchor (`neighbours`): the model's thread waits NEIGHBOURS_WAIT_S for them at most — a new
anchor is evaluated whole anyway — and a later answer serves the next completion.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from cove.daemon_link import DaemonLink
from cove.errors import CoveError
from cove.protocol.params import IndexDefinitions, IndexOpen, IndexSearch, IndexStatusParams, IndexUpdate

logger = logging.getLogger(__name__)

#: How often the build's progress is asked for (seconds).
POLL_S = 0.5
#: Names whose definitions (or their absence) are remembered.
MAX_NAMES = 4096
#: Windows whose neighbours are remembered, how many each, and how long the model's thread waits for new ones.
MAX_WINDOWS, NEIGHBOURS_PER_WINDOW, NEIGHBOURS_WAIT_S = 256, 6, 0.06


class IndexedDefinition(NamedTuple):
    """A definition the index holds: its name, file (relative to the root), first line (1-based), text."""

    name: str
    path: str
    line: int
    text: str


class ProjectIndex:
    """The project's index as this server sees it: opened once, fed saves, read for completions."""

    def __init__(self, link: DaemonLink, root: Path) -> None:
        self.link = link
        self.root = root
        self.loop: asyncio.AbstractEventLoop | None = None
        self._known: OrderedDict[str, tuple[IndexedDefinition, ...]] = OrderedDict()
        self._asking: set[str] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        self._neighbours: OrderedDict[str, tuple[tuple[str, int, str], ...]] = OrderedDict()
        self._searching: dict[str, concurrent.futures.Future[None]] = {}
        self._loop_thread: int | None = None
        #: For `cove.status`: "opening", "building", "ready" or "unavailable", and the daemon's last status.
        self.state = "opening"
        self.last_status: dict[str, Any] = {}

    def status(self) -> dict[str, Any]:
        """The index as `cove.status` shows it."""
        return {"state": self.state, **self.last_status}

    async def open(self) -> AsyncIterator[dict[str, Any]]:
        """Open the index; while the daemon builds it, its status every POLL_S (`done` of `total` files), and the
        final one. Nothing when the daemon cannot be reached: completions go on without the index."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        try:
            status = await self.link.call(IndexOpen(str(self.root)))
            while status["building"]:
                self.state, self.last_status = "building", status
                yield status
                await asyncio.sleep(POLL_S)
                status = await self.link.call(IndexStatusParams(str(self.root)))
            self.state, self.last_status = "ready", status
            yield status
        except CoveError as err:
            self.state = "unavailable"
            logger.warning("the project's index is not available: %s", err)

    async def saved(self, path: Path) -> None:
        """A saved file: indexed again now, and what was known of its definitions forgotten."""
        with contextlib.suppress(CoveError):
            await self.link.call(IndexUpdate(str(self.root), [str(path)]))
        self._known.clear()

    def definitions(self, names: Iterable[str]) -> list[IndexedDefinition]:
        """The definitions known for `names` (in their order); the unknown ones are asked for in the background.
        Safe to call from any thread (the engine's)."""
        found: list[IndexedDefinition] = []
        missing = []
        for name in names:
            known = self._known.get(name)
            if known is None:
                missing.append(name)
            else:
                found += known
        if missing and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._ask, missing)
        return found

    def _ask(self, names: list[str]) -> None:
        wanted = [name for name in names if name not in self._asking][:64]
        if wanted:
            self._asking.update(wanted)
            task = asyncio.ensure_future(self._fetch(wanted))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, names: list[str]) -> None:
        try:
            chunks: list[dict[str, Any]] = await self.link.call(IndexDefinitions(str(self.root), names, 40))
        except CoveError:
            return
        finally:
            self._asking.difference_update(names)
        by_name: dict[str, list[IndexedDefinition]] = {name: [] for name in names}
        for chunk in chunks:
            by_name.setdefault(chunk["name"], []).append(
                IndexedDefinition(chunk["name"], chunk["path"], chunk["start_line"], chunk["text"])
            )
        for name, definitions in by_name.items():
            self._known[name] = tuple(definitions)
            self._known.move_to_end(name)
        while len(self._known) > MAX_NAMES:
            self._known.popitem(last=False)

    def neighbours(self, key: str, query: str, exclude: str | None) -> tuple[tuple[str, int, str], ...]:
        """The chunks of the index most like `query` (path, first line, text), remembered under `key` (a window's
        anchor): from memory when known, else asked for and waited on for NEIGHBOURS_WAIT_S at most (never on the
        event loop's thread). Safe to call from any thread."""
        known = self._neighbours.get(key)
        if known is not None or self.loop is None or self.loop.is_closed():
            return known or ()
        asking = self._searching.get(key)
        if asking is None:
            asking = asyncio.run_coroutine_threadsafe(self._search(key, query, exclude), self.loop)
            self._searching[key] = asking
        if threading.get_ident() != self._loop_thread:
            with contextlib.suppress(concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                asking.result(timeout=NEIGHBOURS_WAIT_S)
        return self._neighbours.get(key, ())

    async def _search(self, key: str, query: str, exclude: str | None) -> None:
        try:
            chunks: list[dict[str, Any]] = await self.link.call(
                IndexSearch(str(self.root), query, NEIGHBOURS_PER_WINDOW, exclude)
            )
            found = tuple((chunk["path"], chunk["start_line"], chunk["text"]) for chunk in chunks)
        except CoveError:
            found = ()
        finally:
            self._searching.pop(key, None)
        self._neighbours[key] = found
        while len(self._neighbours) > MAX_WINDOWS:
            self._neighbours.popitem(last=False)
