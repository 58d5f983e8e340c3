"""Cove's own LSP messages (beyond the spec), typed once: the edge (edge.py) structures their params with these
types, so that a handler receives them parsed and a malformed one is refused before dispatch."""

from __future__ import annotations

from typing import Any

import attrs
from lsprotocol import types

#: Notification: where the cursor is now (sent by the editors, debounced, on cursor moves and focus).
CURSOR = "cove/cursor"
#: Notification from the server, `{"textDocument": {"uri"}}`: the suggestion last shown early at the document's cursor
#: (while the user typed on) has been written whole; an editor that shows it asks again (served without the model).
SUGGESTION_READY = "cove/suggestionReady"


@attrs.define
class CursorParams:
    """`cove/cursor`'s params: the document and the cursor, in the negotiated position encoding."""

    text_document: types.TextDocumentIdentifier = attrs.field()
    position: types.Position = attrs.field()


@attrs.define
class CursorNotification:
    """A `cove/cursor` message as it comes off the wire."""

    params: CursorParams = attrs.field()
    method: str = attrs.field(default=CURSOR)
    jsonrpc: str = attrs.field(default="2.0")


#: Notification: the problems the editor shows for a document now (all its sources: linters, type checkers, other
#: language servers), sent by the editors when they change, so that a run in progress hears of the errors it made.
DIAGNOSTICS = "cove/diagnostics"


@attrs.define
class DiagnosticsParams:
    """`cove/diagnostics`'s params: the document and every diagnostic the editor shows for it (LSP's shape)."""

    text_document: types.TextDocumentIdentifier = attrs.field()
    diagnostics: list[types.Diagnostic] = attrs.field()


@attrs.define
class DiagnosticsNotification:
    """A `cove/diagnostics` message as it comes off the wire."""

    params: DiagnosticsParams = attrs.field()
    method: str = attrs.field(default=DIAGNOSTICS)
    jsonrpc: str = attrs.field(default="2.0")


#: Notification: lines the user yanked (Neovim) or selected and left selected (VS Code): code they care about, kept
#: in the ring of recently seen code that completions draw context from (server/context/recent_code.py).
YANKED = "cove/yanked"


@attrs.define
class YankedParams:
    """`cove/yanked`'s params: the document and the range (whole lines of it are taken)."""

    text_document: types.TextDocumentIdentifier = attrs.field()
    range: types.Range = attrs.field()


@attrs.define
class YankedNotification:
    """A `cove/yanked` message as it comes off the wire."""

    params: YankedParams = attrs.field()
    method: str = attrs.field(default=YANKED)
    jsonrpc: str = attrs.field(default="2.0")


#: Message type of each of Cove's notifications, by method.
NOTIFICATION_TYPES: dict[str, type[Any]] = {
    CURSOR: CursorNotification,
    DIAGNOSTICS: DiagnosticsNotification,
    YANKED: YankedNotification,
}
