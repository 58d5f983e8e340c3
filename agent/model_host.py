"""The host's local models: every model a face asks for, loaded on first use and kept within a memory budget.

A request names the model it wants (`ModelSpec`: the file and the settings that shape its context and caches, from
the asking project's and editor's config); requests with equal specs share one `ResidentModel` (two projects on the
same model, every window of one project). Before a model loads, the least recently used idle ones are unloaded until
the estimate of what all hold fits `[daemon] model_memory_mib`; a model in use is never unloaded under its user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove.config import CoveConfig
from cove.inference.model.model_files import expected_size
from cove.inference.resident import ResidentModel
from cove.protocol.params import ModelSpec

logger = logging.getLogger(__name__)

MIB = 1 << 20


class ModelHost:
    """The loaded models of the daemon, by spec; `config` is the daemon's own (its model is the default)."""

    def __init__(
        self,
        config: CoveConfig,
        build: Callable[[CoveConfig, Callable[[], None]], ResidentModel] | None = None,
    ) -> None:
        self.config = config
        self.budget_bytes = config.daemon.model_memory_mib * MIB
        self.default = ModelSpec.of(config)
        self._build = build or (lambda settings, before_load: ResidentModel(settings, before_load=before_load))
        self._models: OrderedDict[ModelSpec, ResidentModel] = OrderedDict()
        self._lock = threading.Lock()
        #: Models unloaded to make room for another, over the daemon's life.
        self.evictions = 0

    def model(self, spec: ModelSpec | None = None) -> ResidentModel:
        """The model of `spec` (the default when None), built on first use (loaded on its first request)."""
        spec = spec or self.default
        with self._lock:
            resident = self._models.get(spec)
            if resident is None:
                resident = self._models[spec] = self._build(spec.apply(self.config), lambda: self._make_room(spec))
            self._models.move_to_end(spec)
            resident.asked_at = time.monotonic()
            return resident

    def models(self) -> list[tuple[ModelSpec, ResidentModel]]:
        """Every model built, least recently asked for first."""
        with self._lock:
            return list(self._models.items())

    def held_bytes(self) -> int:
        """What the loaded models hold, as estimated."""
        return sum(resident.memory_bytes() for _, resident in self.models())

    def _make_room(self, spec: ModelSpec) -> None:
        """Before the model of `spec` loads: unload the least recently used idle models while the estimate of all
        with it exceeds the budget (in the loading model's thread)."""
        needed = _file_bytes(spec)
        for other_spec, other in self.models():
            if self.held_bytes() + needed <= self.budget_bytes:
                return
            if other_spec == spec or not other.loaded or other.busy:
                continue
            if other.unload():
                self.evictions += 1
                logger.info(
                    "unloaded %s to make room for %s within [daemon] model_memory_mib = %d",
                    other.path_hint,
                    spec.model.path or "the default model",
                    self.budget_bytes // MIB,
                )

    def forget(self, document: str) -> None:
        for _, resident in self.models():
            resident.forget(document)

    def unload_idle(self) -> None:
        """Free every model unused for its `[model] idle_unload_s`."""
        for _, resident in self.models():
            resident.unload_if_idle()

    def close(self) -> None:
        for _, resident in self.models():
            resident.close()

    def status(self) -> list[dict[str, Any]]:
        """Each model built, most recently asked for first, for `status`."""
        now = time.monotonic()
        return [
            {
                "path": resident.path_hint,
                "n_ctx": spec.model.n_ctx,
                "kv_type": spec.model.kv_type,
                "loaded": resident.loaded,
                "memory_mib": round(resident.memory_bytes() / MIB, 1),
                "asked_s_ago": round(now - resident.asked_at, 1),
                "loads": resident.loads,
            }
            for spec, resident in reversed(self.models())
        ]


def _file_bytes(spec: ModelSpec) -> int:
    """The size of the model's weights before it loads (0 when the file is missing: its load will say so)."""
    try:
        return Path(spec.model.path).stat().st_size if spec.model.path else expected_size()
    except OSError:
        return 0
