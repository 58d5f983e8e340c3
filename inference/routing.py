"""Workload routing: each named slot has a chain of model targets, tried in order, ending at the local model.

The decision says which target serves and why the earlier ones were passed over, so that the transcript can show
the route taken.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from cove.config import RoutingConfig
from cove.errors import ConfigError

TARGETS = ("local", "remote")
#: Completions may also come from the daemon's resident model (the language server is a client of it).
COMPLETE_TARGETS = (*TARGETS, "daemon")


class Slot(enum.StrEnum):
    """The workloads that are routed separately."""

    COMPLETE = "complete"
    EXECUTE = "execute"
    PLAN = "plan"
    COMPACT = "compact"
    CRITIQUE = "critique"


@dataclass(frozen=True)
class Route:
    """The target chosen for a slot, and the targets passed over with the reason."""

    slot: Slot
    target: str
    skipped: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """One line for the transcript."""
        passed = "; ".join(f"{target}: {why}" for target, why in self.skipped)
        return f"route {self.slot}: {self.target}" + (f" (passed over {passed})" if passed else "")


def chain(config: RoutingConfig, slot: Slot) -> tuple[str, ...]:
    """The slot's chain, checked, with the local model appended when the config left it out."""
    targets: tuple[str, ...] = getattr(config, slot.value)
    known = COMPLETE_TARGETS if slot is Slot.COMPLETE else TARGETS
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise ConfigError(f"routing.{slot.value}: unknown target(s) {unknown}; use {list(known)}")
    return targets if targets and targets[-1] == "local" else (*targets, "local")


def route(config: RoutingConfig, slot: Slot, unavailable: Callable[[str], str | None]) -> Route:
    """The first target of the slot's chain that is available; `unavailable` says why a target is not (or None)."""
    skipped: list[tuple[str, str]] = []
    for target in chain(config, slot):
        reason = unavailable(target) if target != "local" else None
        if reason is None:
            return Route(slot, target, tuple(skipped))
        skipped.append((target, reason))
    raise AssertionError("the chain always ends at the local model")  # pragma: no cover
