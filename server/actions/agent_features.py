"""The LSP side of agent actions: code actions listed cheaply and resolved by the agent, commands, editor events.

Handlers stay thin: the offers and tasks are pure functions (actions.py), the runs live in agent_bridge.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from cove import languages
from cove.errors import CoveError, InputError
from cove.server.actions.agent_bridge import ActionOutcome, EditorRunOutcome
from cove.server.actions.code_actions import ACTIONS, Offer, code_action, diagnostics_event, offered, task_for
from cove.server.actions.local_actions import LOCAL_ACTIONS
from cove.server.actions.local_features import local_change
from cove.server.context.code_context import scopes_at
from cove.server.cove_methods import DIAGNOSTICS, DiagnosticsParams
from cove.server.positions import document_key, open_document

if TYPE_CHECKING:
    from cove.server.app import CoveServer

CODE_ACTION_KINDS = sorted({kind for kind, _ in ACTIONS.values()}, key=str)


def register(server: CoveServer) -> None:
    """Add the agent features to the server."""

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=CODE_ACTION_KINDS, resolve_provider=True),
    )
    def on_code_action(ls: CoveServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = document_key(params.text_document.uri)
        document = open_document(ls.workspace, uri)
        scope = None
        language = languages.language_of(uri)
        tree = ls.parsed.tree(uri, document.version or 0, document.source)
        if tree is not None and language is not None:
            position = params.range.start
            lines = document.lines
            text = lines[position.line] if position.line < len(lines) else ""
            # At the end of a line (where a click in VS Code leaves the cursor) the tree has only the module: the
            # line's own code says which function it is in.
            column = position.character if position.character < len(text.rstrip()) else len(text) - len(text.lstrip())
            scopes = scopes_at(tree, position.line, column, language)
            scope = scopes[0] if scopes else None
        unfit = ls.agent_unfit()
        offers = offered(uri, params.range, params.context.diagnostics, scope)
        # The local model's docstrings and tests are Python's; elsewhere those need the agent too.
        local: tuple[str, ...] = LOCAL_ACTIONS if language == "python" else ()
        if unfit:  # the local model serves what it can; the rest is listed, off, with the reason
            offers = [_without_agent(offer, _disabled_support(ls), local) for offer in offers]
        return [code_action(offer, "" if offer.action in local else unfit) for offer in offers]

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def on_resolve(ls: CoveServer, action: types.CodeAction) -> types.CodeAction:
        data: dict[str, Any] = action.data if isinstance(action.data, dict) else {}
        kind = data.get("action")
        if kind not in ACTIONS or "uri" not in data:
            raise InputError("not a Cove code action (no action data)")
        path, text = _document(ls, data["uri"])
        if kind in LOCAL_ACTIONS and ls.agent_unfit() and languages.language_of(data["uri"]) == "python":
            change = await local_change(ls, kind, data, path, text)
            ident = ls.agent.keep(ActionOutcome(action.title, changes=(change,)))
            action.command = types.Command(title=action.title, command="cove.apply", arguments=[ident])
            return action
        read_only = ACTIONS[kind][1]
        task = task_for(kind, data, path, text)
        result = await _run(ls, action.title, task, read_only=read_only, propose=not read_only, plan_first=False)
        finished = result.finished
        ident = ls.agent.keep(ActionOutcome(action.title, finished.answer, tuple(finished.changes or ())))
        command = "cove.show" if read_only else "cove.apply"
        action.command = types.Command(title=action.title, command=command, arguments=[ident])
        return action

    for name, run in COMMANDS.items():
        server.command(name)(_command_handler(name, run))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def on_save(ls: CoveServer, params: types.DidSaveTextDocumentParams) -> None:
        path = to_fs_path(params.text_document.uri) or ""
        ls.context.recent.note_saved(document_key(params.text_document.uri))
        if ls.index is not None:
            await ls.index.saved(Path(path))
        await ls.agent.event("file_saved", {"path": _relative(ls, Path(path))})

    @server.feature(DIAGNOSTICS)
    async def on_diagnostics(ls: CoveServer, params: DiagnosticsParams) -> None:
        path = to_fs_path(params.text_document.uri) or params.text_document.uri
        await ls.agent.event("diagnostics_changed", diagnostics_event(_relative(ls, Path(path)), params.diagnostics))


def _without_agent(offer: Offer, disabled_support: bool, local: tuple[str, ...]) -> Offer:
    """An offer as listed when no model fit for the agent is configured: served by the local model, or off (the
    title says so where the client shows no reason; running it says why and what to set)."""
    if offer.action in local:
        return dataclasses.replace(offer, title=f"{offer.title} (local model)")
    return offer if disabled_support else dataclasses.replace(offer, title=f"{offer.title} (off: needs a chat model)")


def _disabled_support(ls: CoveServer) -> bool:
    """Whether the client shows a code action's `disabled` reason (LSP 3.16 `codeAction.disabledSupport`)."""
    document = ls.client_capabilities.text_document
    return bool(document and document.code_action and document.code_action.disabled_support)


Command = Callable[["CoveServer", str, list[Any]], Awaitable[Any]]


def _command_handler(command: str, run: Command) -> Callable[..., Awaitable[Any]]:
    """pygls passes a command's arguments as positional ones after the server (named `ls`)."""

    async def handle(ls: Any, *arguments: Any) -> Any:  # pygls resolves these annotations at run time
        return await run(ls, command, list(arguments))

    return handle


async def _ask(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    """`cove.ask` (read-only) and `cove.agent`: a question or a task, its answer shown."""
    if not arguments or not isinstance(arguments[0], str) or not arguments[0].strip():
        raise InputError(f"{command} needs the question or task as its first argument")
    title = f"Cove: {arguments[0][:60]}"
    result = await _run(ls, title, arguments[0], read_only=command == "cove.ask", propose=False)
    finished = result.finished
    await ls.agent.show(title, finished.answer or f"(the run ended: {finished.stopped})")
    return {"stopped": finished.stopped, "answer": finished.answer, "session_id": result.session_id}


async def _apply(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    return {"applied": await ls.agent.apply(_result_id(command, arguments))}


async def _show(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    kept = ls.agent.results.pop(_result_id(command, arguments), None)
    if kept is not None:
        await ls.agent.show(kept.title, kept.answer)
    return {"answer": kept.answer if kept else ""}


async def _decide_plan(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    feedback = str(arguments[0]) if arguments else ""
    return {"result": await ls.agent.decide_plan(command == "cove.approvePlan", feedback)}


async def _cancel(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    return {"cancelled": await ls.agent.cancel()}


async def _undo(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    return {"text": await ls.agent.undo()}


async def _transcript(ls: CoveServer, command: str, arguments: list[Any]) -> dict[str, Any]:
    text = await ls.agent.transcript()
    await ls.agent.show("Cove transcript", text)
    return {"text": text}


async def _event(ls: CoveServer, command: str, arguments: list[Any]) -> None:
    if len(arguments) != 2 or not isinstance(arguments[0], str) or not isinstance(arguments[1], dict):
        raise InputError("cove.event needs [type, data]")
    await ls.agent.event(arguments[0], arguments[1])


#: The agent's commands, each to the function that runs it.
COMMANDS: dict[str, Command] = {
    "cove.ask": _ask,
    "cove.agent": _ask,
    "cove.apply": _apply,
    "cove.show": _show,
    "cove.approvePlan": _decide_plan,
    "cove.rejectPlan": _decide_plan,
    "cove.cancel": _cancel,
    "cove.undo": _undo,
    "cove.transcript": _transcript,
    "cove.event": _event,
}


def _result_id(command: str, arguments: list[Any]) -> int:
    if not arguments or not isinstance(arguments[0], int) or isinstance(arguments[0], bool):
        raise InputError(f"{command} needs the number of a result (from a resolved code action) as its argument")
    return arguments[0]


async def _run(ls: CoveServer, title: str, task: str, **params: Any) -> EditorRunOutcome:
    """A run with the editor's unsaved texts; a run that failed is an error the client shows, and so is one that
    cannot work (no model fit for the agent: what to set instead)."""
    unfit = ls.agent_unfit()
    if unfit:
        raise CoveError(unfit)
    overlay = {}
    for document in ls.workspace.text_documents.values():
        path = to_fs_path(document.uri)  # the URI as the client sent it: the keys are unquoted once already
        if path and Path(path).is_relative_to(ls.agent.root):
            overlay[_relative(ls, Path(path))] = document.source
    result = await ls.agent.run(title, task, overlay=overlay, **params)
    if result.finished.stopped == "error":
        raise CoveError(f"the agent failed: {result.finished.error or ''}")
    return result


def _document(ls: CoveServer, uri: Any) -> tuple[str, str]:
    if not isinstance(uri, str):
        raise InputError("the code action's data has no document URI; request the code actions again")
    document = open_document(ls.workspace, uri)
    return _relative(ls, Path(to_fs_path(document.uri) or "")), document.source


def _relative(ls: CoveServer, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ls.agent.root.resolve()))
    except ValueError:
        return str(path)
