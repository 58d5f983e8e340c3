"""The daemon's index methods (index/*): one code index per workspace, shared by every editor and the agent.

A workspace's index is opened on first use (`index/open`, or any index/* call) and built in the background at low
priority; while it builds, every call answers from the index as it stands, and `index/status` says how far the
build is (the editors show it as `$/progress`, `cove index` as a bar). After the build a file watcher (watchfiles)
re-indexes what changes on disk (what .gitignore excludes left out); saves reported by the editors
(`index/update`) are indexed at once. Indexes persist in the daemon's data folder; a restarted daemon re-reads only
the files that changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from cove import languages
from cove.agent.clients import Client
from cove.agent.code_index import CodeIndex, CodeIndexError, database_for, lower_priority
from cove.agent.search_tools import GitIgnored
from cove.agent.service import Method
from cove.protocol.codes import INVALID_PARAMS
from cove.protocol.framing import ProtocolError
from cove.protocol.params import IndexDefinitions, IndexOpen, IndexSearch, IndexStatusParams, IndexUpdate

logger = logging.getLogger(__name__)

#: Workspaces whose indexes are kept open at once.
MAX_OPEN = 8


@dataclass
class _Workspace:
    index: CodeIndex
    stop: threading.Event = field(default_factory=threading.Event)
    building: bool = True
    done: int = 0
    total: int = 0
    error: str = ""
    opened: float = field(default_factory=time.monotonic)
    threads: list[threading.Thread] = field(default_factory=list)


class IndexService:
    """index/* over one CodeIndex per workspace root; database calls run in worker threads."""

    def __init__(self, data: Path, watch: bool = True) -> None:
        self.data = data
        self.watch = watch
        self._open: dict[Path, _Workspace] = {}
        self._lock = threading.Lock()

    def methods(self) -> list[Method]:
        return [
            Method(IndexOpen, self.open),
            Method(IndexStatusParams, self.status),
            Method(IndexSearch, self.search),
            Method(IndexDefinitions, self.definitions),
            Method(IndexUpdate, self.update),
        ]

    def close(self) -> None:
        """Stop every build and watcher (what was indexed is kept) and close the databases."""
        with self._lock:
            entries, self._open = list(self._open.values()), {}
        for entry in entries:
            self._close(entry)

    async def open(self, client: Client, params: IndexOpen) -> dict[str, Any]:
        return await self.status(client, IndexStatusParams(params.root))

    async def status(self, client: Client, params: IndexStatusParams) -> dict[str, Any]:
        entry = await asyncio.to_thread(self._workspace, params.root)
        status = asdict(await asyncio.to_thread(entry.index.status))
        return status | {"building": entry.building, "done": entry.done, "total": entry.total, "error": entry.error}

    async def search(self, client: Client, params: IndexSearch) -> list[dict[str, Any]]:
        entry = await asyncio.to_thread(self._workspace, params.root)
        found = await asyncio.to_thread(
            entry.index.search, params.query, max(1, min(params.limit, 100)), params.exclude
        )
        return [asdict(chunk) for chunk in found]

    async def definitions(self, client: Client, params: IndexDefinitions) -> list[dict[str, Any]]:
        entry = await asyncio.to_thread(self._workspace, params.root)
        found = await asyncio.to_thread(entry.index.definitions, params.names, max(1, min(params.limit, 100)))
        return [asdict(chunk) for chunk in found]

    async def update(self, client: Client, params: IndexUpdate) -> dict[str, Any]:
        entry = await asyncio.to_thread(self._workspace, params.root)
        count = await asyncio.to_thread(entry.index.update, [Path(path) for path in params.paths])
        return {"indexed": count}

    def search_code(self, root: Path, query: str, limit: int = 10) -> str:
        """The agent's `search_code` tool: chunks matching `query`, as `path:lines: kind name` and their text."""
        entry = self._workspace(str(root))
        found = entry.index.search(query, max(1, min(limit, 30)))
        note = (
            f"[the index is still being built: {entry.done} of {entry.total} files so far]\n" if entry.building else ""
        )
        if not found:
            return note + f"no indexed code matches {query!r}; try other words, or `search` for a regex"
        blocks = []
        for chunk in found:
            text = "\n".join(chunk.text.split("\n")[:12])
            title = f"{chunk.kind} {chunk.name}".strip()
            blocks.append(f"{chunk.path}:{chunk.start_line}-{chunk.end_line}: {title}\n{text}")
        return note + "\n\n".join(blocks)

    def _workspace(self, root: str) -> _Workspace:
        """The workspace's open index, opened (and its build started) on first use."""
        path = Path(root)
        if not path.is_absolute() or not path.is_dir():
            raise ProtocolError(f"index: root must be an existing folder's absolute path, got {root!r}", INVALID_PARAMS)
        path = path.resolve()
        if path in (Path("/"), Path.home().resolve()):
            raise ProtocolError(f"index: root {path} is not a project; open the project's own folder", INVALID_PARAMS)
        with self._lock:
            entry = self._open.get(path)
            if entry is not None:
                return entry
            try:
                entry = _Workspace(CodeIndex(path, database_for(self.data, path)))
            except CodeIndexError as err:
                raise ProtocolError(str(err), INVALID_PARAMS) from err
            self._open[path] = entry
            if len(self._open) > MAX_OPEN:
                oldest = min(self._open, key=lambda key: self._open[key].opened)
                self._close(self._open.pop(oldest))
        build = threading.Thread(target=self._build, args=(entry,), name=f"index {path.name}", daemon=True)
        entry.threads.append(build)
        build.start()
        return entry

    def _build(self, entry: _Workspace) -> None:
        lower_priority()

        def progress(done: int, total: int) -> None:
            entry.done, entry.total = done, total

        try:
            started = time.monotonic()
            count = entry.index.refresh(progress, entry.stop, workers=os.cpu_count() or 1)
            logger.info("indexed %s: %d files in %.1f s", entry.index.root, count, time.monotonic() - started)
        except Exception as err:  # a broken file system or database: said in index/status, the daemon goes on
            logger.exception("indexing %s failed", entry.index.root)
            entry.error = str(err)
        finally:
            entry.building = False
        if self.watch and not entry.stop.is_set():
            self._watch(entry)

    def _watch(self, entry: _Workspace) -> None:
        """Re-index what changes on disk until the workspace is closed."""
        root = entry.index.root
        ignored = GitIgnored(entry.index.workspace)
        try:
            for changes in watchfiles.watch(root, stop_event=entry.stop, debounce=200, raise_interrupt=False):
                if any(Path(path).name == ".gitignore" for _, path in changes):
                    ignored.forget()
                paths = {Path(path) for _, path in changes if languages.language_of(path) is not None}
                if paths := {path for path in paths if not ignored(path)}:
                    entry.index.update(sorted(paths))
        except Exception:  # the folder is gone, too many watches: the index stays as it is
            logger.warning("watching %s stopped", root, exc_info=True)

    def _close(self, entry: _Workspace) -> None:
        entry.stop.set()
        for thread in entry.threads:
            thread.join(timeout=5)
        with contextlib.suppress(Exception):
            entry.index.close()
