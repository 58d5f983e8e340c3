"""Typed parameters of the daemon's methods, parsed once at the edge by `parse_params`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InitializeParams:
    protocol_version: int
    client: str = "unknown"
    #: Required on the TCP listener, ignored on the Unix socket (which only its owner can open).
    token: str | None = None


@dataclass(frozen=True)
class SessionCreate:
    project: str
    title: str = ""


@dataclass(frozen=True)
class SessionRef:
    session_id: str


@dataclass(frozen=True)
class SessionList:
    project: str | None = None
    include_closed: bool = False


@dataclass(frozen=True)
class SessionSend:
    session_id: str
    text: str


@dataclass(frozen=True)
class SessionEvent:
    session_id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryWrite:
    text: str
    project: str
    scope: str = "project"
    kind: str = "fact"


@dataclass(frozen=True)
class MemorySearch:
    query: str
    project: str
    limit: int = 10


@dataclass(frozen=True)
class EventPublish:
    topic: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ProposalCreate:
    project: str
    text: str


@dataclass(frozen=True)
class ProposalList:
    project: str


@dataclass(frozen=True)
class ProposalDecision:
    proposal_id: int
    accept: bool


@dataclass(frozen=True)
class AgentRunParams:
    session_id: str
    task: str
    #: "ask" | "auto-read" | "full-auto"; default: the project's agent.mode.
    mode: str | None = None
    #: Default: the project's agent.plan_first.
    plan_first: bool | None = None
    #: Only read-only tools and no plan: for questions and explanations.
    read_only: bool = False
    #: File changes are not written but returned in the `finished` event as `changes` (an editor applies them).
    propose: bool = False
    #: Texts that win over the disk, by path (an editor's unsaved buffers).
    overlay: dict[str, Any] | None = None


@dataclass(frozen=True)
class AgentDecision:
    session_id: str
    request_id: int
    approve: bool
    #: For a rejected plan: what to change; the planner revises the plan with it.
    feedback: str = ""
