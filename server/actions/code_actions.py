"""Agent actions as code actions: listed cheaply (no model, no daemon), resolved by an agent run in the daemon.

`offered` decides which actions fit a selection; `task_for` writes the agent's task; `workspace_edit` turns the
changes the agent proposed into a WorkspaceEdit against the texts the editor has.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from cove.protocol.events import ProposedChange
from cove.server.context.code_context import EnclosingScope

#: Action id -> (code action kind, whether it only reads).
ACTIONS: dict[str, tuple[types.CodeActionKind, bool]] = {
    "explain": (types.CodeActionKind.Empty, True),
    "fix": (types.CodeActionKind.QuickFix, False),
    "refactor": (types.CodeActionKind.RefactorRewrite, False),
    "tests": (types.CodeActionKind.Source, False),
    "docstring": (types.CodeActionKind.RefactorRewrite, False),
}


@dataclass(frozen=True)
class Offer:
    """One action to list: its id, title, and what resolving it needs to know."""

    action: str
    title: str
    data: dict[str, Any]


def offered(
    uri: str, selection: types.Range, diagnostics: Sequence[types.Diagnostic], scope: EnclosingScope | None
) -> list[Offer]:
    """The actions that fit: fixes for the diagnostics in range, the selection's, and the enclosing function's."""
    base = {"uri": uri, "start": selection.start.line, "end": selection.end.line}
    offers = [
        Offer("fix", f"Cove: fix “{_short(d.message)}”", base | {"diagnostic": _diagnostic(d)}) for d in diagnostics
    ]
    selected = selection.start != selection.end
    if selected:
        offers.append(Offer("explain", "Cove: explain the selection", base))
        offers.append(Offer("refactor", "Cove: refactor the selection", base))
    if scope is not None:
        around = base | {"start": scope.start_line, "end": scope.end_line, "name": scope.name}
        if not selected:
            offers.append(Offer("explain", f"Cove: explain {scope.name}", around))
        if scope.kind == "function":
            offers.append(Offer("tests", f"Cove: write tests for {scope.name}", around))
        if not scope.has_docstring:
            offers.append(Offer("docstring", f"Cove: add a docstring to {scope.name}", around))
    return offers


def code_action(offer: Offer, disabled: str = "") -> types.CodeAction:
    """The listed form: no edit yet; `codeAction/resolve` computes it. `disabled`: why it cannot run (listed all the
    same, greyed out with the reason, so that the user learns what would make it work)."""
    kind, _ = ACTIONS[offer.action]
    return types.CodeAction(
        title=offer.title,
        kind=kind,
        data={"action": offer.action, **offer.data},
        disabled=types.CodeActionDisabled(reason=disabled) if disabled else None,
    )


def task_for(action: str, data: dict[str, Any], path: str, text: str) -> str:
    """The agent's task for an action on lines data[start]..data[end] of `path`."""
    lines = text.split("\n")
    start, end = data["start"], min(data["end"], len(lines) - 1)
    snippet = "\n".join(lines[start : end + 1])
    where = f"{path}, lines {start + 1}-{end + 1}"
    code = f"\n```\n{snippet}\n```"
    name = data.get("name", "the selection")
    if action == "explain":
        return f"Explain what this code in {where} does, how it is used, and anything surprising in it:{code}"
    if action == "fix":
        diagnostic = data["diagnostic"]
        return (
            f"Fix this problem in {path} at line {diagnostic['line'] + 1}: {diagnostic['message']}"
            f" (reported by {diagnostic['source'] or 'the editor'}). ProposedChange as little as possible.{code}"
        )
    if action == "refactor":
        return f"Refactor {where} for clarity without changing its behaviour; keep its interface.{code}"
    if action == "tests":
        module = Path(path).stem
        return (
            f"Write pytest tests for {name} in {path}: its normal cases, edge cases and errors. Put them in "
            f"tests/test_{module}.py (create it, or add to it if it exists) and run them.{code}"
        )
    if action == "docstring":
        return f"Add a docstring to {name} in {path}: what it does, its arguments, what it returns or raises.{code}"
    raise ValueError(f"unknown action {action!r}")


def workspace_edit(changes: list[ProposedChange], root: Path) -> types.WorkspaceEdit:
    """The agent's proposed changes as edits: the smallest line ranges that differ, against the `before` texts."""
    edits: dict[str, list[types.TextEdit]] = {}
    creates: list[types.CreateFile | types.TextDocumentEdit] = []
    for change in changes:
        uri = from_fs_path(str(root / change.path)) or ""
        if change.before is None:
            creates.append(types.CreateFile(uri=uri, options=types.CreateFileOptions(ignore_if_exists=True)))
            whole = [types.TextEdit(types.Range(types.Position(0, 0), types.Position(0, 0)), change.after)]
            identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None)
            creates.append(types.TextDocumentEdit(text_document=identifier, edits=whole))
            continue
        edits[uri] = line_edits(change.before, change.after)
    if creates:
        documents: list[Any] = list(creates)
        for uri, text_edits in edits.items():
            identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None)
            documents.append(types.TextDocumentEdit(text_document=identifier, edits=text_edits))
        return types.WorkspaceEdit(document_changes=documents)
    return types.WorkspaceEdit(changes=edits)


def line_edits(before: str, after: str) -> list[types.TextEdit]:
    """TextEdits replacing whole lines, one per differing block (positions in `before`)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    if before.endswith("\n") or not old:
        end_of_text = types.Position(len(old), 0)
    else:
        end_of_text = types.Position(len(old) - 1, len(old[-1]))
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = types.Position(i1, 0) if i1 < len(old) else end_of_text
        end = types.Position(i2, 0) if i2 < len(old) else end_of_text
        edits.append(types.TextEdit(types.Range(start, end), "".join(new[j1:j2])))
    return edits


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """`text` with `edits` applied, as an editor would (they do not overlap); for tests and previews."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def at(position: types.Position) -> int:
        return offsets[position.line] + position.character

    for edit in sorted(edits, key=lambda e: at(e.range.start), reverse=True):
        text = text[: at(edit.range.start)] + edit.new_text + text[at(edit.range.end) :]
    return text


def diagnostics_event(path: str, diagnostics: Sequence[types.Diagnostic]) -> dict[str, Any]:
    """A `diagnostics_changed` event (agent/reminders.py) for what the editor shows in `path`: the number of errors
    (a diagnostic without a severity counts as one, as the spec lets clients read it) and the first of them by
    position, with the line and its source, for the reminder to quote."""
    errors = sorted(
        (d for d in diagnostics if d.severity in (None, types.DiagnosticSeverity.Error)),
        key=lambda d: (d.range.start.line, d.range.start.character),
    )
    if not errors:
        return {"path": path, "errors": 0}
    first = errors[0]
    source = f" ({first.source})" if first.source else ""
    return {"path": path, "errors": len(errors), "first": f"line {first.range.start.line + 1}: {first.message}{source}"}


def _diagnostic(diagnostic: types.Diagnostic) -> dict[str, Any]:
    return {"message": diagnostic.message, "source": diagnostic.source or "", "line": diagnostic.range.start.line}


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
