"""Positions as the LSP spec defines them: clamped to the line's end, lines ended by \\n, \\r\\n or \\r only."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.workspace import Workspace
from pygls.workspace.position_codec import PositionCodec

from cove.errors import InputError
from cove.server.positions import document_key, locate, open_document, spec_lines

UTF16 = PositionCodec(types.PositionEncodingKind.Utf16)
UTF32 = PositionCodec(types.PositionEncodingKind.Utf32)


def at(text: str, line: int, character: int, codec: PositionCodec = UTF16) -> tuple[int, tuple[int, int]] | None:
    position = types.Position(line, character)
    cursor = locate("file:///a.py", text, position, codec)
    assert position == types.Position(line, character), "the params' position was changed"
    return None if cursor is None else (cursor.offset, (cursor.position.line, cursor.position.character))


def test_a_character_past_the_end_of_a_line_means_its_end_not_the_next_line() -> None:
    text = "abc\ndef\n"
    assert at(text, 0, 3) == (3, (0, 3))
    assert at(text, 0, 4) == (3, (0, 3))
    assert at(text, 0, 2**31 - 1) == (3, (0, 3))


def test_the_last_line_without_a_newline_ends_at_its_last_character() -> None:
    assert at("abc\ndef", 1, 99) == (7, (1, 3))


def test_a_line_past_the_end_of_the_document_is_nothing() -> None:
    assert at("abc\ndef", 2, 0) is None
    assert at("abc\n", 1, 0) == (4, (1, 0))  # after a final newline there is one empty line
    assert at("abc\n", 2, 0) is None
    assert at("", 0, 5) == (0, (0, 0))


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_crlf_and_cr_end_lines(end: str) -> None:
    text = f"ab{end}cd{end}ef"
    assert at(text, 1, 9) == (2 + len(end) + 2, (1, 2))
    assert at(text, 2, 1) == (2 * (2 + len(end)) + 1, (2, 1))


def test_other_unicode_separators_do_not_end_lines() -> None:
    text = "a\u2028b\x0cc\nd"
    assert spec_lines(text) == ["a\u2028b\x0cc\n", "d"]
    assert at(text, 1, 1) == (len(text), (1, 1))


def test_utf16_units_count_astral_characters_twice() -> None:
    text = 'x = "😋"\n'
    assert at(text, 0, 7) == (6, (0, 7))  # before the closing quote: 7 UTF-16 units in, 6 code points
    assert at(text, 0, 99) == (7, (0, 8))
    assert at(text, 0, 99, UTF32) == (7, (0, 7))


def test_documents_are_found_whatever_the_escaping() -> None:
    workspace = Workspace(None)
    workspace.put_text_document(types.TextDocumentItem("file:///a/my%20module.py", "python", 1, "x = 1\n"))
    for uri in ("file:///a/my%20module.py", "file:///a/my module.py"):
        assert open_document(workspace, uri).source == "x = 1\n"
        assert document_key(uri) == "file:///a/my module.py"
    with pytest.raises(InputError, match="not open"):
        open_document(workspace, "file:///a/other.py")
