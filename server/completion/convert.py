"""Pure conversions between the engine's results and LSP types."""

from __future__ import annotations

import re

from lsprotocol import types

_WORD_END = re.compile(r"[A-Za-z0-9_]*$")


def inline_completion_list(
    text: str, position: types.Position, accepted: types.Command | None = None
) -> types.InlineCompletionList:
    """One inline item inserting `text` at the cursor, or no items when there is nothing to suggest; the client
    runs `accepted` when the user takes it."""
    if not text.strip():
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(insert_text=text, range=types.Range(position, position), command=accepted)
    return types.InlineCompletionList(items=[item])


def completion_list(text: str, line_prefix: str, position: types.Position) -> types.CompletionList:
    """The suggestion as one completion item, for clients without inline completion.

    The item replaces the word being typed, so that the client's own filtering keeps it while the user types on.
    """
    if not text.strip():
        return types.CompletionList(is_incomplete=True, items=[])
    word = _WORD_END.search(line_prefix)
    typed = word.group(0) if word else ""
    start = types.Position(position.line, position.character - len(typed))
    new_text = typed + text
    first_line = new_text.split("\n", 1)[0]
    item = types.CompletionItem(
        label=first_line.strip() or new_text.strip(),
        kind=types.CompletionItemKind.Text,
        detail="Cove (local model)",
        filter_text=new_text,
        sort_text="0",
        text_edit=types.TextEdit(types.Range(start, position), new_text),
        documentation=types.MarkupContent(types.MarkupKind.Markdown, f"```\n{new_text}\n```")
        if "\n" in new_text
        else None,
    )
    return types.CompletionList(is_incomplete=True, items=[item])
