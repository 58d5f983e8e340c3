"""The daemon's memory methods: notes the agent and the user keep (memory/write, memory/search) and proposals for
the project's COVE.md that the user accepts or rejects."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from cove.agent.clients import Client
from cove.agent.service import Method
from cove.agent.sessions import append_project_memory
from cove.agent.store import MemoryStore, NoteScope
from cove.protocol.codes import INVALID_PARAMS
from cove.protocol.framing import ProtocolError
from cove.protocol.params import MemorySearch, MemoryWrite, ProposalCreate, ProposalDecision, ProposalList


class MemoryService:
    """memory/* over the store; every store call runs in a worker thread."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def methods(self) -> list[Method]:
        return [
            Method(MemoryWrite, self.write),
            Method(ProposalCreate, self.propose),
            Method(ProposalList, self.proposals),
            Method(ProposalDecision, self.decide),
            Method(MemorySearch, self.search),
        ]

    async def write(self, client: Client, params: MemoryWrite) -> dict[str, Any]:
        try:
            scope = NoteScope(params.scope)
        except ValueError:
            raise ProtocolError(
                f"memory/write: scope must be 'user' or 'project', got {params.scope!r}", INVALID_PARAMS
            ) from None
        note = await asyncio.to_thread(self.store.write_note, scope, params.project, params.kind, params.text)
        return asdict(note)

    async def propose(self, client: Client, params: ProposalCreate) -> dict[str, Any]:
        return asdict(await asyncio.to_thread(self.store.propose, params.project, params.text))

    async def proposals(self, client: Client, params: ProposalList) -> list[dict[str, Any]]:
        return [asdict(p) for p in await asyncio.to_thread(self.store.proposals, params.project)]

    async def decide(self, client: Client, params: ProposalDecision) -> dict[str, Any]:
        """The user's decision on a proposal; an accepted one is appended to the project's COVE.md."""
        proposal = await asyncio.to_thread(self.store.decide, params.proposal_id, params.accept)
        if params.accept:
            await asyncio.to_thread(append_project_memory, proposal.project, proposal.text)
        return asdict(proposal)

    async def search(self, client: Client, params: MemorySearch) -> list[dict[str, Any]]:
        notes = await asyncio.to_thread(self.store.search_notes, params.query, params.project, params.limit)
        return [asdict(note) for note in notes]
