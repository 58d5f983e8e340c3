"""Typed parameters of the daemon's methods: each names its method, is built by the client and parsed once by the
daemon (`codec.structure`), with one wire form (`to_wire`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from cove.config import CoveConfig, ModelConfig
from cove.protocol.codec import unstructure
from cove.protocol.jobs import GenerationJob


@dataclass(frozen=True)
class Params:
    """Parameters of one method; `method` is its name on the wire."""

    method: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        """The params object as sent, without the fields left at None (the daemon applies its defaults)."""
        data: dict[str, Any] = unstructure(self)
        return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class InitializeParams(Params):
    method = "initialize"
    protocol_version: int
    client: str = "unknown"
    #: Required on the TCP listener, ignored on the Unix socket (which only its owner can open).
    token: str | None = None


@dataclass(frozen=True)
class StatusParams(Params):
    method = "status"


@dataclass(frozen=True)
class ShutdownParams(Params):
    method = "shutdown"


@dataclass(frozen=True)
class SessionCreate(Params):
    method = "session/create"
    project: str
    title: str = ""


@dataclass(frozen=True)
class SessionList(Params):
    method = "session/list"
    project: str | None = None
    include_closed: bool = False


@dataclass(frozen=True)
class SessionResume(Params):
    method = "session/resume"
    session_id: str


@dataclass(frozen=True)
class SessionClose(Params):
    method = "session/close"
    session_id: str


@dataclass(frozen=True)
class SessionSend(Params):
    method = "session/send"
    session_id: str
    text: str


@dataclass(frozen=True)
class SessionEvent(Params):
    method = "session/event"
    session_id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryWrite(Params):
    method = "memory/write"
    text: str
    project: str
    scope: str = "project"
    kind: str = "fact"


@dataclass(frozen=True)
class MemorySearch(Params):
    method = "memory/search"
    query: str
    project: str
    limit: int = 10


@dataclass(frozen=True)
class ProposalCreate(Params):
    method = "memory/propose"
    project: str
    text: str


@dataclass(frozen=True)
class ProposalList(Params):
    method = "memory/proposals"
    project: str


@dataclass(frozen=True)
class ProposalDecision(Params):
    method = "memory/decide"
    proposal_id: int
    accept: bool


@dataclass(frozen=True)
class EventsSubscribe(Params):
    method = "events/subscribe"


@dataclass(frozen=True)
class EventPublish(Params):
    method = "events/publish"
    topic: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AgentRun(Params):
    method = "agent/run"
    session_id: str
    task: str
    #: "ask" | "auto-read" | "full-auto"; default: the settings' agent.mode.
    mode: str | None = None
    #: Default: the settings' agent.plan_first.
    plan_first: bool | None = None
    #: Model calls in this run; default: the settings' agent.max_steps.
    max_steps: int | None = None
    #: Only read-only tools and no plan: for questions and explanations.
    read_only: bool = False
    #: File changes are not written but returned in the `finished` event as `changes` (an editor applies them).
    propose: bool = False
    #: Texts that win over the disk, by path (an editor's unsaved buffers).
    overlay: dict[str, str] | None = None
    #: The run's file reads go to this client first (`file_wanted` events, answered with agent/file): an editor
    #: whose buffers the agent should see, unsaved ones included.
    client_files: bool = False
    #: The editor's settings (the shape of config.toml, e.g. {"agent": {"mode": "ask"}}), over the project's.
    settings: dict[str, Any] | None = None
    #: Run even when no model fit for the agent is configured (a base model without a chat template): for
    #: measuring the daemon under an agent's load, never for a user's task. Without it such a run is refused.
    unfit_model_ok: bool = False


@dataclass(frozen=True)
class CheckpointList(Params):
    """The checkpoints of a project's workspace (agent/checkpoints.py), oldest first."""

    method = "checkpoint/list"
    project: str


@dataclass(frozen=True)
class CheckpointRestore(Params):
    """Restore checkpoint `number` of a project's workspace; without it, undo the agent's last step (again: the one
    before)."""

    method = "checkpoint/restore"
    project: str
    number: int | None = None


@dataclass(frozen=True)
class AgentDecide(Params):
    method = "agent/decide"
    session_id: str
    request_id: int
    approve: bool
    #: For a rejected plan: what to change; the planner revises the plan with it.
    feedback: str = ""


@dataclass(frozen=True)
class AgentFile(Params):
    """The answer to a `file_wanted` event: the file's text as the client has it, or None to read the disk."""

    method = "agent/file"
    session_id: str
    request_id: int
    text: str | None


@dataclass(frozen=True)
class AgentCancel(Params):
    method = "agent/cancel"
    session_id: str


@dataclass(frozen=True)
class AgentUndo(Params):
    method = "agent/undo"
    session_id: str


@dataclass(frozen=True)
class ModelSpec:
    """The local model a face asks the host for: the file and the settings that shape its context and caches, from
    the asking project's and editor's config. Requests with equal specs share one loaded model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    reuse_kv_cache: bool = True
    kv_cache_mib: int = 256
    draft_tokens: int = 6
    fim_order: Literal["auto", "psm", "spm"] = "auto"

    @classmethod
    def of(cls, config: CoveConfig) -> ModelSpec:
        """The spec of `config`'s local model (a relative `model.path` made absolute here, where it was read)."""
        path = config.model.path and str(Path(config.model.path).expanduser().absolute())
        completion = config.completion
        return cls(
            dataclasses.replace(config.model, path=path),
            completion.reuse_kv_cache,
            completion.kv_cache_mib,
            completion.draft_tokens,
            completion.fim_order,
        )

    def apply(self, config: CoveConfig) -> CoveConfig:
        """`config` with this spec's model settings."""
        completion = dataclasses.replace(
            config.completion,
            reuse_kv_cache=self.reuse_kv_cache,
            kv_cache_mib=self.kv_cache_mib,
            draft_tokens=self.draft_tokens,
            fim_order=self.fim_order,
        )
        return dataclasses.replace(config, model=self.model, completion=completion)


@dataclass(frozen=True)
class CompleteGenerate(Params):
    """A completion from the host's model of `model` (None: the daemon's own config's); the reply is a
    `Generated`."""

    method = "complete/generate"
    job: GenerationJob
    model: ModelSpec | None = None


#: The daemon's notification to a client whose completion waits for the model to load: `{"model": ...}`.
COMPLETE_LOADING = "complete/loading"
#: The daemon's notification of a `complete/generate` request's text so far, as it is generated:
#: `{"request_id": ..., "text": ...}` (the reply still carries the whole `Generated`).
COMPLETE_TEXT = "complete/text"


@dataclass(frozen=True)
class CompleteWarm(Params):
    """Evaluate a place's prompt while nothing else waits for the model; the reply is a `Warmed`."""

    method = "complete/warm"
    job: GenerationJob
    model: ModelSpec | None = None


@dataclass(frozen=True)
class CompleteCancel(Params):
    """Stop this client's `complete/generate` or `complete/warm` request `request_id` (between two tokens)."""

    method = "complete/cancel"
    request_id: int


@dataclass(frozen=True)
class CompleteForget(Params):
    """A document was closed: drop the KV state kept for it (in every model)."""

    method = "complete/forget"
    document: str


@dataclass(frozen=True)
class CompleteLoad(Params):
    """Load the host's model of `model` now (a language server asks while it shows its loading progress); the reply
    is `model` (its description), `path` (its file) and `loaded_now` (false: it was loaded already)."""

    method = "complete/load"
    model: ModelSpec | None = None


@dataclass(frozen=True)
class IndexOpen(Params):
    """Start indexing a workspace in the background if it is not (every later index/* call on it answers from the
    index as it stands); the reply is `index/status`'s."""

    method = "index/open"
    root: str


@dataclass(frozen=True)
class IndexStatusParams(Params):
    """The index of a workspace: files, chunks, references, when it was built and updated, a build's progress."""

    method = "index/status"
    root: str


@dataclass(frozen=True)
class IndexSearch(Params):
    """The chunks of code that best match `query`'s words (BM25), leaving out the file `exclude` (relative)."""

    method = "index/search"
    root: str
    query: str
    limit: int = 10
    exclude: str | None = None


@dataclass(frozen=True)
class IndexDefinitions(Params):
    """The chunks that define these names, in the order given."""

    method = "index/definitions"
    root: str
    names: list[str]
    limit: int = 20


@dataclass(frozen=True)
class IndexUpdate(Params):
    """Index these files again now (saved, created, deleted); paths absolute or relative to the root."""

    method = "index/update"
    root: str
    paths: list[str]
