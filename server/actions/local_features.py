"""The LSP side of the local actions (local_actions.py): a code action's change written by the completion model,
and `cove.commitMessage`. Shown as `$/progress` while the model writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from cove import languages
from cove.errors import InputError
from cove.inference.completion.engine import WritingRequest
from cove.protocol.events import ProposedChange
from cove.server.actions.commit_messages import write_commit_message
from cove.server.actions.local_actions import propose_docstring, propose_tests, where_tests_go
from cove.server.positions import document_key, open_document

if TYPE_CHECKING:
    from cove.server.app import CoveServer


def register(server: CoveServer) -> None:
    """Add `cove.commitMessage` to the server."""

    @server.command("cove.commitMessage")
    async def on_commit_message(ls: Any, *arguments: Any) -> dict[str, str]:  # pygls resolves annotations at run time
        """A subject for what is staged in the repository at the first argument (a folder's path or URI; the
        workspace's root when absent)."""
        root = _folder(arguments[0]) if arguments and isinstance(arguments[0], str) else ls.agent.root
        token = await ls.begin_progress("the local model writes the commit message")
        try:
            return {"message": await write_commit_message(root, _writer(ls))}
        finally:
            _end(ls, token)


async def local_change(ls: CoveServer, kind: str, data: dict[str, Any], path: str, text: str) -> ProposedChange:
    """The change the completion model proposes for the local action `kind` ("docstring", "tests")."""
    document = open_document(ls.workspace, data["uri"])
    tree = ls.parsed.tree(document_key(document.uri), document.version or 0, text)
    if tree is None or languages.language_of(document.uri) != "python":
        raise InputError("the local model writes Python docstrings and tests only")
    line = data.get("start")
    if not isinstance(line, int) or isinstance(line, bool):
        raise InputError("the code action's data has no line; list the code actions again")
    token = await ls.begin_progress(f"the local model writes {'the docstring' if kind == 'docstring' else 'tests'}")
    try:
        if kind == "docstring":
            return await propose_docstring(tree, text, line, path, _writer(ls))
        root = ls.agent.root
        existing = _text_of(ls, root / where_tests_go(root, path))
        return await propose_tests(tree, text, line, path, root, existing, _writer(ls))
    finally:
        _end(ls, token)


def _writer(ls: CoveServer) -> Callable[[WritingRequest], Awaitable[str]]:
    async def write(request: WritingRequest) -> str:
        return (await ls.service().write(request)).text

    return write


def _end(ls: CoveServer, token: str | None) -> None:
    if token is not None:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))


def _folder(argument: str) -> Path:
    return Path(to_fs_path(argument) or argument) if argument.startswith("file:") else Path(argument)


def _text_of(ls: CoveServer, path: Path) -> str | None:
    """A file's text as the editor has it (unsaved changes included), else on disk; None when it does not exist."""
    for document in ls.workspace.text_documents.values():
        if to_fs_path(document.uri) == str(path):
            return str(document.source)
    return path.read_text(encoding="utf-8") if path.is_file() else None
