"""A docstring written by the local model in the file's own style.

A small base model cannot be trusted with a docstring's structure: asked for one whole, it forgets parameters,
invents others and drifts between styles. So the structure comes from the code (python_functions.py: the
parameters, what is returned, yielded and raised) and the file (its docstrings' style), and the model writes only
the prose, one hole at a time: the summary, then each parameter's description after its name, then the return
value's, each stopped at its line's end. Every hole extends the prompt of the last, so the model's KV cache of it
is reused. The function's body is not shown before the prompt: a small model then copies its code and comments
instead of writing prose; the nearest documented function of the file goes right before it, as the example.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cove.inference.completion.engine import WritingRequest
from cove.server.context.python_functions import FileStyle, FunctionFacts

#: Characters of the file before the function that go into the prompt.
PREFIX_CHARS = 1800
#: Characters of the example (a documented function of the file) put before the function.
CONTEXT_CHARS = 1600


@dataclass(frozen=True)
class Hole:
    """A part of the docstring the model writes: up to its line's end."""

    kind: str  # "summary" | "parameter" | "returns" | "yields" | "raises" | "type"
    max_tokens: int = 32


Segment = str | Hole


def layout(facts: FunctionFacts, style: FileStyle) -> list[Segment]:
    """The docstring as fixed text and holes, in the file's style (indented for the function's body)."""
    i, quote = facts.indent, style.quote
    segments: list[Segment] = [i + quote + ("\n" + i if style.summary_on_next_line else ""), Hole("summary", 40)]
    parameters, raises = facts.parameters, facts.raises
    returns = facts.returns_value or (facts.returns not in ("", "None") and not facts.yields)
    if style.style == "plain" or not (parameters or raises or returns or facts.yields):
        return [*segments, (f"\n{i}" if style.summary_on_next_line else "") + quote + "\n"]
    if style.style == "google":
        if parameters:
            segments.append(f"\n\n{i}Args:")
            for p in parameters:
                typed = f" ({p.annotation})" if style.typed and p.annotation else ""
                segments += [f"\n{i}    {p.name}{typed}: ", Hole("parameter")]
        for title, wanted in (("Returns", returns), ("Yields", facts.yields)):
            if wanted:
                typed = f"{facts.returns}: " if style.typed and facts.returns and title == "Returns" else ""
                segments += [f"\n\n{i}{title}:\n{i}    {typed}", Hole(title.lower())]
        if raises:
            segments.append(f"\n\n{i}Raises:")
            for name in raises:
                segments += [f"\n{i}    {name}: ", Hole("raises")]
    elif style.style == "numpy":
        if parameters:
            segments.append(f"\n\n{i}Parameters\n{i}----------")
            for p in parameters:
                segments += [f"\n{i}{p.name}" + (f" : {p.annotation}" if p.annotation else ""), f"\n{i}    "]
                segments.append(Hole("parameter"))
        for title, wanted in (("Returns", returns), ("Yields", facts.yields)):
            if wanted:
                segments.append(f"\n\n{i}{title}\n{i}{'-' * len(title)}\n{i}")
                segments += [facts.returns, f"\n{i}    "] if facts.returns else [Hole("type", 12), f"\n{i}    "]
                segments.append(Hole(title.lower()))
        if raises:
            segments.append(f"\n\n{i}Raises\n{i}------")
            for name in raises:
                segments += [f"\n{i}{name}\n{i}    ", Hole("raises")]
    else:  # sphinx
        segments.append("\n")
        for p in parameters:
            segments += [f"\n{i}:param {p.name}: ", Hole("parameter")]
            if style.typed and p.annotation:
                segments.append(f"\n{i}:type {p.name}: {p.annotation}")
        if returns or facts.yields:
            segments += [f"\n{i}:returns: " if returns else f"\n{i}:yields: ", Hole("returns")]
            if style.typed and facts.returns:
                segments.append(f"\n{i}:rtype: {facts.returns}")
        for name in raises:
            segments += [f"\n{i}:raises {name}: ", Hole("raises")]
    return [*segments, f"\n{i}{quote}\n"]


def clean(piece: str, hole: Hole, style: FileStyle) -> str:
    """A hole's text as the docstring keeps it: one line, no stray quotes, a summary capitalised and ending as the
    file's summaries do."""
    text = " ".join(piece.replace('"""', " ").replace("'''", " ").split()).strip()
    if hole.kind == "type":
        return text.split(" ")[0] if text else "object"
    if hole.kind == "summary" and text:
        text = text[0].upper() + text[1:]
        if style.period and not text.endswith((".", "!", "?", ":")):
            text += "."
    return text


async def write_docstring(
    facts: FunctionFacts,
    style: FileStyle,
    source: str,
    example: str,
    document: str,
    write: Callable[[WritingRequest], Awaitable[str]],
) -> str:
    """The docstring for `facts`' function in `source`, written hole by hole by `write` (the model); `example`: a
    documented function of the same file in its style (or "")."""
    lines = source.split("\n")
    before = "\n".join(lines[: facts.def_line])
    before = before[max(0, len(before) - PREFIX_CHARS) :]
    before = before[before.find("\n") + 1 :] if len(before) == PREFIX_CHARS else before
    header = "\n".join(lines[facts.def_line : facts.body_line])
    # The example right before the function: the summary's line and the sections follow its pattern.
    shown = f"{example[:CONTEXT_CHARS]}\n{facts.indent}...\n\n\n" if example else ""
    base = f"{before}\n{shown}{header}\n"
    quote = style.quote
    written = ""
    for segment in layout(facts, style):
        if isinstance(segment, str):
            written += segment
            continue
        request = WritingRequest(document, base + written, stop_at=("\n", quote), max_tokens=segment.max_tokens)
        piece = await write(request)
        if segment.kind == "summary" and not piece.strip():
            piece = await _summary_again(facts, request, write)
        written += clean(piece, segment, style)
    return written


async def _summary_again(
    facts: FunctionFacts, request: WritingRequest, write: Callable[[WritingRequest], Awaitable[str]]
) -> str:
    """A summary where the model went to the next line at once (a small model often does, and then writes code):
    started with the verb the function's name suggests, else taken from the next line if that is prose; else the
    name in words, for the user to edit in the review."""
    start = opener(facts)
    if start:
        return f"{start} {await write(dataclasses.replace(request, prefix=f'{request.prefix}{start} '))}"
    text = (await write(dataclasses.replace(request, prefix=f"{request.prefix}\n{facts.indent}"))).strip()
    if text and text[0].isalpha() and not text.endswith((":", "(", ",")) and " = " not in text:
        return text
    return " ".join(w for w in facts.name.split("_") if w).capitalize()


def insert_docstring(source: str, facts: FunctionFacts, docstring: str) -> str:
    """`source` with `docstring` (whole lines, ending with a newline) before the function's first statement."""
    lines = source.split("\n")
    return "\n".join(lines[: facts.body_line]) + "\n" + docstring + "\n".join(lines[facts.body_line :])


def one_line_body(source: str, facts: FunctionFacts) -> bool:
    """The body is on the `def` line (`def f(): return 1`): there is no line to put a docstring before."""
    line = source.split("\n")[facts.body_line]
    return bool(line[: len(facts.indent)].strip())


#: The first words of a summary, from the first word of a function's name, for when the model starts none itself.
_OPENERS = {"get": "Return", "is": "Return whether", "has": "Return whether", "can": "Return whether", "on": "Handle"}
_VERB_WORDS = (
    "add apply build calculate check clear close compute connect convert copy create decode delete disconnect draw "
    "encode ensure find format handle init load make merge open parse process publish read register remove render "
    "reset resolve run save send set setup start stop subscribe update validate wait write"
)
_VERBS = frozenset(_VERB_WORDS.split())


def opener(facts: FunctionFacts) -> str:
    """A summary's first word for the function's name (`get_x`: "Return", `create_x`: "Create"); "" if unknown."""
    words = [w for w in facts.name.lower().split("_") if w]
    first = words[0] if words else ""
    if first in _OPENERS:
        return _OPENERS[first]
    if first in _VERBS:
        return first.capitalize()
    return "Return" if facts.returns_value else ""
