"""The daemon's checkpoint methods (`checkpoint/list`, `checkpoint/restore`) over agent/checkpoints.py, for editors
and `cove checkpoints` / `cove undo`; a restore waits for no run but refuses while one works in the project."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove.agent.checkpoints import Checkpoint, Checkpoints
from cove.agent.clients import Client
from cove.agent.service import Method
from cove.errors import CoveError
from cove.protocol.codes import BUSY, INVALID_PARAMS
from cove.protocol.framing import ProtocolError
from cove.protocol.params import CheckpointList, CheckpointRestore

#: A request that would race a run in progress.


class CheckpointService:
    """`running(project)`: whether an agent run is in progress there (a restore under it would race its writes)."""

    def __init__(self, running: Callable[[str], bool]) -> None:
        self._running = running

    def methods(self) -> list[Method]:
        return [Method(CheckpointList, self._list), Method(CheckpointRestore, self._restore)]

    async def _list(self, client: Client, params: CheckpointList) -> dict[str, Any]:
        checkpoints = await asyncio.to_thread(_checkpoints, params.project)
        return {"checkpoints": [dataclasses.asdict(c) for c in await asyncio.to_thread(checkpoints.entries)]}

    async def _restore(self, client: Client, params: CheckpointRestore) -> dict[str, Any]:
        checkpoints = await asyncio.to_thread(_checkpoints, params.project)
        if self._running(str(checkpoints.workspace)):
            raise ProtocolError("checkpoint/restore: an agent run is working in this project; cancel it first", BUSY)
        try:
            if params.number is None:
                target, before = await asyncio.to_thread(checkpoints.undo)
            else:
                target, before = await asyncio.to_thread(checkpoints.restore, params.number)
        except CoveError as err:
            raise ProtocolError(f"checkpoint/restore: {err}", INVALID_PARAMS) from None
        return {"restored": _plain(target), "before": _plain(before)}


def _checkpoints(project: str) -> Checkpoints:
    path = Path(project)
    if not path.is_absolute() or not path.is_dir():
        raise ProtocolError(f"checkpoint: project must be a folder's absolute path, got {project!r}", INVALID_PARAMS)
    return Checkpoints(path)


def _plain(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    return dataclasses.asdict(checkpoint) if checkpoint is not None else None
