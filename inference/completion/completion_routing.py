"""Completions routed along `[routing] complete`: the first target that is up and fast enough answers.

A target that fails (unreachable, an error, slower than the time budget) is skipped for `[remote] retry_after_s`
seconds and the same request goes on to the next target, so a dead server costs at most one keystroke's budget; after
the pause the target is tried again (a circuit breaker that re-probes). The chain always ends at the local model,
which is never skipped. `status()` says who serves and why the others do not.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cove.config import CoveConfig, RemoteConfig
from cove.errors import ModelError
from cove.inference.completion.completion_backend import CompletionBackend, ServerBackend
from cove.inference.completion.daemon_completions import DaemonCompletions
from cove.inference.routing import Slot, chain
from cove.protocol.jobs import Generated, GenerationJob, Warmed
from cove.protocol.params import ModelSpec
from cove.runtime import daemon_paths

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetStatus:
    """One target of the chain as the user sees it: serving, skipped for a while (with why), or unavailable."""

    name: str
    description: str
    state: str  # "ready" | "skipped" | "unavailable"
    reason: str = ""


class RoutedCompletions:
    """A completion backend over a chain of backends; `unavailable` names targets that could not be built
    (no base_url set, offline mode refusing the host) with the reason."""

    name = "routed"

    def __init__(
        self,
        targets: Sequence[CompletionBackend],
        unavailable: Sequence[tuple[str, str]] = (),
        clock: Callable[[], float] = time.monotonic,
        retry_after_s: float = 30.0,
    ) -> None:
        assert targets, "the chain ends at the local model"
        self.targets = list(targets)
        self.unavailable = list(unavailable)
        self._clock = clock
        #: Seconds a failing target is passed over before it is tried again.
        self.retry_after_s = retry_after_s
        self._skipped: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        serving = self.serving()
        passed = [f"{s.name}: {s.reason}" for s in self.status() if s.state != "ready" and s.name != serving.name]
        return serving.describe() + (f" (passed over {'; '.join(passed)})" if passed else "")

    def serving(self) -> CompletionBackend:
        """The target the next request goes to."""
        now = self._clock()
        with self._lock:
            return next(
                (t for t in self.targets[:-1] if self._skipped.get(t.name, (0.0, ""))[0] <= now), self.targets[-1]
            )

    def status(self) -> list[TargetStatus]:
        now = self._clock()
        found = [TargetStatus(name, "", "unavailable", reason) for name, reason in self.unavailable]
        for target in self.targets:
            until, reason = self._skipped.get(target.name, (0.0, ""))
            if until > now:
                left = f"{reason}; tried again in {until - now:.0f} s"
                found.append(TargetStatus(target.name, target.describe(), "skipped", left))
            else:
                found.append(TargetStatus(target.name, target.describe(), "ready"))
        return found

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        last = self.targets[-1]
        for target in self.targets:
            if target is not last and self._skipped.get(target.name, (0.0, ""))[0] > self._clock():
                continue
            if target is last:
                return dataclasses.replace(target.generate(job, stop_requested, on_text), backend=target.name)
            try:
                generated = target.generate(job, stop_requested, on_text)
            except ModelError as err:
                self._skip(target, str(err))
                continue
            if generated.stop == "time" and not generated.text:
                self._skip(target, "slower than the time budget")
            else:
                self._recovered(target)
            return dataclasses.replace(generated, backend=target.name)
        raise AssertionError("the chain always ends at its last target")  # pragma: no cover

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        """Warm the target the next request goes to."""
        return self.serving().warm(job, stop_requested)

    def forget(self, document: str) -> None:
        for target in self.targets:
            target.forget(document)

    def close(self) -> None:
        for target in self.targets:
            target.close()

    def _skip(self, target: CompletionBackend, reason: str) -> None:
        logger.warning(
            "completions: %s failed (%s); passing over it for %.0f s", target.name, reason, self.retry_after_s
        )
        with self._lock:
            self._skipped[target.name] = (self._clock() + self.retry_after_s, reason)

    def _recovered(self, target: CompletionBackend) -> None:
        with self._lock:
            if self._skipped.pop(target.name, None) is not None:
                logger.info("completions: %s answers again", target.name)


def server_targets(
    config: CoveConfig,
) -> tuple[list[ServerBackend], list[tuple[str, str]]]:
    """The servers `[routing] complete` names before the local model, built; those that cannot be, with why."""
    built: list[ServerBackend] = []
    unavailable: list[tuple[str, str]] = []
    remote = config.remote
    for name in chain(config.routing, Slot.COMPLETE)[:-1]:
        if name == "daemon":
            built.append(daemon_backend(ModelSpec.of(config)))
            continue
        if name != "remote":
            continue
        backend = remote.completion_api  # named as a built one would be: "openai", "llama-server"
        if not remote.base_url:
            unavailable.append((backend, "no remote.base_url set"))
            continue
        try:
            built.append(server_backend(remote))
        except ModelError as err:
            unavailable.append((backend, str(err)))
    return built, unavailable


def daemon_backend(spec: ModelSpec | None = None) -> DaemonCompletions:
    """The daemon of this user (`$XDG_RUNTIME_DIR/cove`), connected to (and started) in the background now; it
    serves the model of `spec` (None: its own config's)."""
    backend = DaemonCompletions(daemon_paths(), spec)
    backend.start()
    return backend


def server_backend(remote: RemoteConfig) -> ServerBackend:
    """The backend `[remote] completion_api` names for the server at `[remote] base_url`."""
    if remote.completion_api == "llama-server":
        from cove.inference.completion.llama_server_completions import (
            LlamaServerCompletions,  # httpx: only when routed there
        )

        return LlamaServerCompletions(remote.base_url, remote.api_key_env, remote.offline, remote.completion_suffix)
    from cove.inference.completion.openai_completions import OpenAICompletions

    return OpenAICompletions(
        remote.base_url, remote.model, remote.api_key_env, remote.offline, remote.completion_suffix
    )


def completion_backend(config: CoveConfig, local: CompletionBackend) -> CompletionBackend:
    """The backend `[routing] complete` asks for: the local model alone (the default), or a chain ending at it.
    A "local" before a server in the chain serves everything (it never fails), so servers after it are not built."""
    targets = chain(config.routing, Slot.COMPLETE)
    if targets[0] == "local":
        return local
    servers, unavailable = server_targets(config)
    return RoutedCompletions([*servers, local], unavailable, retry_after_s=config.remote.retry_after_s)
