"""Agent actions for the editor: runs in the daemon, shown with `$/progress` (cancellable), approvals asked with
`window/showMessageRequest`, results applied with `workspace/applyEdit` after a diff the user can review.

The handlers in app.py stay thin: they call `run`, `apply` and `show` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lsprotocol import types
from pygls.uris import from_fs_path

from cove.daemon_link import DaemonLink
from cove.errors import CoveError
from cove.protocol.events import AgentEvent, DecisionNeeded, Finished, ProposedChange, ToolCalled
from cove.protocol.params import (
    AgentCancel,
    AgentDecide,
    AgentRun,
    CheckpointRestore,
    SessionCreate,
    SessionEvent,
    SessionResume,
)
from cove.runtime import state_directory
from cove.server.actions.code_actions import workspace_edit

logger = logging.getLogger(__name__)

ALLOW, DENY = "Allow", "Deny"
APPROVE, REJECT = "Approve", "Reject"
APPLY, DISCARD = "Apply", "Discard"


class Editor(Protocol):
    """What the bridge needs of the language server (CoveServer)."""

    @property
    def client_capabilities(self) -> types.ClientCapabilities: ...

    project_root: Path | None
    #: The settings the editor sent (config.toml's shape), validated; every run it starts gets them.
    editor_settings: dict[str, Any] | None

    def window_show_message(self, params: types.ShowMessageParams) -> None: ...
    async def window_show_message_request_async(
        self, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None: ...
    async def window_show_document_async(self, params: types.ShowDocumentParams) -> types.ShowDocumentResult: ...
    async def workspace_apply_edit_async(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult: ...


@dataclass(frozen=True)
class ActionOutcome:
    """What a resolved action left for the user: an answer to show, or changes to review and apply (from an agent
    run, or from the local model: server/actions/local_actions.py)."""

    title: str
    answer: str = ""
    changes: tuple[ProposedChange, ...] = ()


@dataclass(frozen=True)
class EditorRunOutcome:
    """A run started from the editor, as it ended."""

    session_id: str
    title: str
    finished: Finished


class AgentBridge:
    """Agent runs started from this editor, and what they left to apply or show."""

    def __init__(self, editor: Editor, progress: Any) -> None:
        self.editor = editor
        self.progress = progress  # pygls' work_done_progress
        self.link = DaemonLink("cove-lsp")
        self.active: set[str] = set()
        self.last_session: str | None = None
        self.pending_plan: tuple[str, int] | None = None
        #: Results of resolved actions, waiting for the user's `cove.apply` / `cove.show`.
        self.results: dict[int, ActionOutcome] = {}
        self._ids = itertools.count(1)
        self._deciding: set[asyncio.Task[None]] = set()

    @property
    def root(self) -> Path:
        return self.editor.project_root or Path.cwd()

    async def run(self, title: str, task: str, **params: Any) -> EditorRunOutcome:
        """Run `task` in a new session, with the editor's settings; returns how it finished (with `changes` when
        proposed)."""
        session = await self.link.call(SessionCreate(project=str(self.root), title=title))
        session_id = session["id"]
        events = self.link.events(session_id)
        self.active.add(session_id)
        self.last_session = session_id
        token = await self._begin(title, session_id)
        try:
            await self.link.call(AgentRun(session_id, task, settings=self.editor.editor_settings, **params))
            while True:
                event = await events.get()
                if isinstance(event, Finished):
                    return EditorRunOutcome(session_id, title, event)
                if isinstance(event, DecisionNeeded):
                    decision = asyncio.create_task(self._decide(session_id, event))
                    self._deciding.add(decision)
                    decision.add_done_callback(self._deciding.discard)
                self._report(token, event)
        finally:
            self.active.discard(session_id)
            self.link.forget(session_id)
            if token is not None:
                self.progress.end(token, types.WorkDoneProgressEnd(message="done"))

    def keep(self, proposal: ActionOutcome) -> int:
        """Keep `proposal` for `cove.apply` / `cove.show`; returns its number."""
        ident = next(self._ids)
        self.results[ident] = proposal
        return ident

    async def apply(self, ident: int) -> bool:
        """Apply a kept proposal: its diff shown first where the client can show documents, then applied."""
        proposal = self.results.pop(ident, None)
        changes = proposal.changes if proposal is not None else ()
        if not changes:
            self._message(types.MessageType.Info, "Cove: nothing to apply (no change was proposed)")
            return False
        if self._can_show_documents():
            diff = "".join(_diff(change) for change in changes)
            review = _write_state_file(f"review-{ident}.diff", diff)
            await self.editor.window_show_document_async(
                types.ShowDocumentParams(uri=from_fs_path(str(review)) or "", take_focus=True)
            )
            names = ", ".join(change.path for change in changes)
            answer = await self._ask(f"Apply Cove's change to {names}?", [APPLY, DISCARD])
            if answer != APPLY:
                return False
        edit = workspace_edit(list(changes), self.root)
        applied = await self.editor.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label="Cove"))
        if not applied.applied:
            self._message(
                types.MessageType.Warning, f"Cove: the editor did not apply the change ({applied.failure_reason})"
            )
        return applied.applied

    async def show(self, title: str, text: str) -> None:
        """Show an answer: as a markdown document where the client can show one, else as a message."""
        if self._can_show_documents():
            name = "".join(c if c.isalnum() else "-" for c in title.lower())[:40]
            path = _write_state_file(f"{name}.md", f"# {title}\n\n{text}\n")
            await self.editor.window_show_document_async(
                types.ShowDocumentParams(uri=from_fs_path(str(path)) or "", take_focus=False)
            )
        else:
            self._message(types.MessageType.Info, f"{title}\n\n{text}")

    async def decide_plan(self, approve: bool, feedback: str = "") -> str:
        """`cove.approvePlan` / `cove.rejectPlan`: answer the plan waiting for the user."""
        if self.pending_plan is None:
            return "no plan is waiting for a decision"
        session_id, request_id = self.pending_plan
        self.pending_plan = None
        await self.link.call(AgentDecide(session_id, request_id, approve, feedback))
        return "approved" if approve else "rejected"

    async def cancel(self) -> int:
        for session_id in list(self.active):
            await self.link.call(AgentCancel(session_id))
        return len(self.active)

    async def undo(self) -> str:
        """Undo the agent's last step in this workspace, commands included (again: the one before), from the
        daemon's checkpoints (agent/checkpoints.py)."""
        result = await self.link.call(CheckpointRestore(str(self.root.resolve())))
        restored = result["restored"]
        changed = ", ".join(restored["changed"][:5]) or "no change"
        where = f"before step {restored['step']}, {restored['tool']}"
        return f"restored checkpoint {restored['number']} ({where}): {changed}"

    async def transcript(self) -> str:
        if self.last_session is None:
            return "no agent session yet"
        resumed = await self.link.call(SessionResume(self.last_session))
        return "\n\n".join(f"**{m['role']}**\n\n{m['content']}" for m in resumed["transcript"])

    async def event(self, kind: str, data: dict[str, Any]) -> None:
        """An editor event (a save, diagnostics) for every run in progress."""
        for session_id in list(self.active):
            with contextlib.suppress(CoveError):
                await self.link.call(SessionEvent(session_id, kind, data))

    async def _decide(self, session_id: str, event: DecisionNeeded) -> None:
        try:
            if event.kind == "plan":
                self.pending_plan = (session_id, event.request_id)
                await self.show("Cove's plan", event.text or "")
                answer = await self._ask("Cove wrote a plan. Approve it?", [APPROVE, REJECT])
                if self.pending_plan != (session_id, event.request_id):
                    return  # answered meanwhile with cove.approvePlan / cove.rejectPlan
                self.pending_plan = None
                approve = answer == APPROVE
            else:
                arguments = json.dumps(event.arguments, ensure_ascii=False)[:300]
                approve = await self._ask(f"Cove wants to run {event.tool}({arguments})", [ALLOW, DENY]) == ALLOW
            await self.link.call(AgentDecide(session_id, event.request_id, approve))
        except CoveError as err:
            logger.info("decision not delivered: %s", err)

    async def _ask(self, message: str, actions: list[str]) -> str | None:
        window = self.editor.client_capabilities.window
        if window is None or window.show_message is None:
            logger.info("the client cannot answer %r; taken as a refusal", message)
            return None
        items = [types.MessageActionItem(title=title) for title in actions]
        params = types.ShowMessageRequestParams(type=types.MessageType.Info, message=message, actions=items)
        answer = await self.editor.window_show_message_request_async(params)
        return answer.title if answer is not None else None

    async def _begin(self, title: str, session_id: str) -> str | None:
        window = self.editor.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"cove-run-{session_id}"
        try:
            await self.progress.create_async(token)
        except Exception:  # a client that refuses the token still gets the result
            return None
        self.progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True, message="starting"))
        cancelled = self.progress.tokens.get(token)
        if cancelled is not None:
            cancelled.add_done_callback(
                lambda future: future.cancelled() and asyncio.ensure_future(self._cancel_one(session_id))
            )
        return token

    async def _cancel_one(self, session_id: str) -> None:
        with contextlib.suppress(CoveError):
            await self.link.call(AgentCancel(session_id))

    def _report(self, token: str | None, event: AgentEvent) -> None:
        if token is None:
            return
        if isinstance(event, ToolCalled):
            message = event.tool + (" (failed)" if event.error else "")
        elif isinstance(event, DecisionNeeded):
            message = "waiting for your decision"
        elif event.type in ("plan", "compaction", "route"):
            message = event.type
        else:
            return
        self.progress.report(token, types.WorkDoneProgressReport(message=message))

    def _can_show_documents(self) -> bool:
        window = self.editor.client_capabilities.window
        return bool(window and window.show_document and window.show_document.support)

    def _message(self, kind: types.MessageType, text: str) -> None:
        self.editor.window_show_message(types.ShowMessageParams(kind, text))


def _diff(change: ProposedChange) -> str:
    before = (change.before or "").splitlines(keepends=True)
    after = change.after.splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"a/{change.path}", f"b/{change.path}"))


def _write_state_file(name: str, text: str) -> Path:
    folder = state_directory() / "editor"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
