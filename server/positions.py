"""Positions and documents as the LSP spec defines them, whatever a client sends.

pygls keys open documents by the unquoted URI and clamps a past-the-end character to the line's last character
(mutating the params). The spec says: lines end at `\\n`, `\\r\\n` or `\\r`; a character past the end of a line means
the end of that line. These pure functions follow the spec; the handlers call them before touching a document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace
from pygls.workspace.position_codec import PositionCodec

from cove.errors import InputError

#: A line and its end, as the LSP spec counts lines (only these three line ends; not Python's splitlines set).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Cursor:
    """Where a request points in an open document: its text, the offset (code points) and the clamped position."""

    uri: str
    text: str
    offset: int
    position: types.Position


def document_key(uri: str) -> str:
    """The one key of a document, whatever escaping the client used (`my%20x.py` and `my x.py` are one file)."""
    return unquote(uri)


def open_document(workspace: Workspace, uri: str) -> TextDocument:
    """The open document at `uri`; an InputError (InvalidParams for the client) when it was never opened."""
    document: TextDocument | None = workspace.text_documents.get(document_key(uri))
    if document is None:
        raise InputError(f"document {uri} is not open; send textDocument/didOpen first")
    return document


def spec_lines(text: str) -> list[str]:
    """The document's lines with their ends; a text ending in a line end (or empty) has one more, empty line."""
    lines = _LINE.findall(text)
    if not lines or lines[-1].endswith(("\n", "\r")):
        lines.append("")
    return lines


def locate(uri: str, text: str, position: types.Position, codec: PositionCodec) -> Cursor | None:
    """The cursor at `position`, its character clamped to the end of its line; None when the line is past the end
    of the document. The params' Position is never changed."""
    lines = spec_lines(text)
    if position.line >= len(lines):
        return None
    line = lines[position.line]
    content = line.rstrip("\r\n")
    character = min(position.character, codec.client_num_units(content))
    column = codec.position_from_client_units([content], types.Position(0, character)).character
    offset = sum(len(previous) for previous in lines[: position.line]) + column
    return Cursor(document_key(uri), text, offset, types.Position(position.line, character))
