"""What a Python function is, read from its tree-sitter node: its parameters, what it returns, yields and raises,
where its docstring goes, and the docstrings of the file around it (their style). The local actions
(local_actions.py) build their prompts and check their results from these facts, never from the model's guesses.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import tree_sitter

#: How a file writes its docstrings' sections.
DocstringStyle = Literal["google", "numpy", "sphinx", "plain"]

_NUMPY = re.compile(r"^\s*(Parameters|Returns|Yields|Raises|Attributes)\s*\n\s*-{3,}\s*$", re.M)
_GOOGLE = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Yields|Raises|Attributes):\s*$", re.M)
_SPHINX = re.compile(r"^\s*:(param|returns?|rtype|raises?|type)\b", re.M)
_GOOGLE_TYPED = re.compile(r"^\s+\*{0,2}\w+ \([^)]*\):", re.M)
_SPHINX_TYPED = re.compile(r"^\s*:type \w+:", re.M)
_NESTED = ("function_definition", "class_definition", "lambda")


@dataclass(frozen=True)
class Parameter:
    """A parameter as the docstring names it (`*args`, `**kwargs` with their stars) and its annotation."""

    name: str
    annotation: str = ""
    has_default: bool = False


@dataclass(frozen=True)
class FunctionFacts:
    """One function: what its docstring must cover, and where it goes."""

    name: str
    #: The class it is defined in ("" for a module-level function).
    owner: str
    parameters: tuple[Parameter, ...]
    #: The return annotation ("" when there is none).
    returns: str
    #: Some `return` gives a value (other than None).
    returns_value: bool
    yields: bool
    #: Exceptions raised by name in the body (not in nested functions), in order.
    raises: tuple[str, ...]
    #: 0-based lines of the `def` (decorators excluded) and of the body's first statement.
    def_line: int
    body_line: int
    end_line: int
    #: The body's indentation.
    indent: str
    has_docstring: bool


@dataclass(frozen=True)
class FileStyle:
    """How the file's docstrings are written, by majority of those that show it."""

    style: DocstringStyle
    #: Parameter types written in the docstring (Google `x (int):`, Sphinx `:type x:`; NumPy always has them).
    typed: bool = False
    quote: str = '"""'
    #: The summary starts on the line after the opening quotes.
    summary_on_next_line: bool = False
    #: Summaries end with a period.
    period: bool = True


def function_facts(node: tree_sitter.Node, source: bytes) -> FunctionFacts:
    """The facts of a `function_definition` node."""
    name_node = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    owner = _owner(node, source)
    parameters = _parameters(node.child_by_field_name("parameters"), source, method=bool(owner))
    return_type = node.child_by_field_name("return_type")
    statements = body.named_children if body is not None else []
    first = statements[0] if statements else None
    has_docstring = bool(first is not None and _is_string_statement(first))
    body_line = first.start_point[0] if first is not None else node.end_point[0]
    indent_from = first.start_point[1] if first is not None else node.start_point[1] + 4
    returns_value, yields, raises = _body_facts(body, source) if body is not None else (False, False, ())
    return FunctionFacts(
        name=_text(name_node, source) or "?",
        owner=owner,
        parameters=parameters,
        returns=_text(return_type, source),
        returns_value=returns_value,
        yields=yields,
        raises=raises,
        def_line=node.start_point[0],
        body_line=body_line,
        end_line=node.end_point[0],
        indent=" " * indent_from,
        has_docstring=has_docstring,
    )


def function_at(tree: tree_sitter.Tree, line: int, column: int = 0) -> tree_sitter.Node | None:
    """The innermost `function_definition` around (line, column)."""
    node: tree_sitter.Node | None = tree.root_node.descendant_for_point_range((line, column), (line, column))
    while node is not None and node.type != "function_definition":
        node = node.parent
    return node


def docstrings(tree: tree_sitter.Tree, source: bytes) -> list[tuple[tree_sitter.Node, str]]:
    """The docstrings of the file's functions and classes, with their function or class node."""
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("function_definition", "class_definition"):
            body = node.child_by_field_name("body")
            first = body.named_children[0] if body is not None and body.named_children else None
            if first is not None and _is_string_statement(first):
                found.append((node, _text(first, source)))
        stack.extend(reversed(node.named_children))
    return found


def docstring_style(text: str) -> DocstringStyle:
    """The style one docstring is written in ("plain" when it has no sections)."""
    if _NUMPY.search(text):
        return "numpy"
    if _SPHINX.search(text):
        return "sphinx"
    if _GOOGLE.search(text):
        return "google"
    return "plain"


def file_style(texts: list[str]) -> FileStyle:
    """The style of a file's docstrings: the sectioned style most of them use (a file whose docstrings have no
    sections is "plain"), with its details."""
    if not texts:
        return FileStyle("plain")
    styles = Counter(docstring_style(text) for text in texts)
    sectioned = [(count, style) for style, count in styles.items() if style != "plain"]
    style: DocstringStyle = max(sectioned)[1] if sectioned else "plain"
    of_style = [text for text in texts if docstring_style(text) == style] or texts
    typed_pattern = _GOOGLE_TYPED if style == "google" else _SPHINX_TYPED
    typed = style == "numpy" or sum(bool(typed_pattern.search(t)) for t in of_style) * 2 > len(of_style)
    quote = "'''" if sum(t.lstrip("rRuU").startswith("'''") for t in texts) * 2 > len(texts) else '"""'
    next_line = sum(t.lstrip("rRuU")[3:4] == "\n" for t in texts) * 2 > len(texts)
    summaries = [_summary_line(t) for t in texts]
    period = sum(s.endswith(".") for s in summaries if s) * 2 >= len([s for s in summaries if s])
    return FileStyle(style, typed, quote, next_line, period)


def parameter_names_in(text: str, style: DocstringStyle) -> list[str]:
    """The parameters a docstring documents, as its style writes them."""
    if style == "sphinx":
        return [m.group(2) for m in re.finditer(r"^\s*:param\s+(?:[^:]*\s)?(\*{0,2})?(\*{0,2}\w+):", text, re.M)]
    section = _section(text, style, ("Args", "Arguments", "Parameters"))
    if style == "numpy":
        return [m.group(1) for m in re.finditer(r"^(\*{0,2}\w+)\s*(?::|$)", section, re.M)]
    if style == "google":
        return [m.group(1) for m in re.finditer(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?:", section, re.M)]
    return []


def _section(text: str, style: DocstringStyle, names: tuple[str, ...]) -> str:
    """The unindented lines of the first section named one of `names`: its entries at column 0."""
    lines = text.expandtabs().split("\n")
    for index, line in enumerate(lines):
        if line.strip().rstrip(":") not in names:
            continue
        if style == "google" and not line.strip().endswith(":"):
            continue
        start = index + (2 if style == "numpy" else 1)
        if style == "numpy" and (start - 1 >= len(lines) or not set(lines[start - 1].strip()) <= {"-"}):
            continue
        entries = []
        base: int | None = None
        for entry in lines[start:]:
            if not entry.strip():
                if style == "google":
                    break
                continue
            indent = len(entry) - len(entry.lstrip())
            if base is None:
                base = indent
            if indent < base or (style == "numpy" and entry.strip() and set(entry.strip()) <= {"-"}):
                break
            if indent == base:
                entries.append(entry.strip())
        if style == "numpy" and entries and entries[-1].strip() in ("Returns", "Yields", "Raises"):
            entries.pop()
        return "\n".join(entries)
    return ""


def _summary_line(docstring: str) -> str:
    body = docstring.lstrip("rRuU")[3:]
    for line in body.split("\n"):
        if line.strip():
            return line.strip().rstrip("'\"").strip()
    return ""


def _owner(node: tree_sitter.Node, source: bytes) -> str:
    parent = node.parent
    if parent is not None and parent.type == "decorated_definition":
        parent = parent.parent
    if parent is not None and parent.type == "block" and parent.parent and parent.parent.type == "class_definition":
        return _text(parent.parent.child_by_field_name("name"), source)
    return ""


def _parameters(node: tree_sitter.Node | None, source: bytes, method: bool) -> tuple[Parameter, ...]:
    if node is None:
        return ()
    found = []
    for child in node.named_children:
        kind = child.type
        if kind in ("identifier", "list_splat_pattern", "dictionary_splat_pattern"):
            found.append(Parameter(_text(child, source)))
        elif kind in ("typed_parameter", "default_parameter", "typed_default_parameter"):
            name = child.child_by_field_name("name")
            if name is None:  # a typed *args / **kwargs: its pattern is the first child
                name = child.named_children[0] if child.named_children else None
            annotation = _text(child.child_by_field_name("type"), source)
            found.append(Parameter(_text(name, source), annotation, kind != "typed_parameter"))
    if method and found and found[0].name in ("self", "cls"):
        found = found[1:]
    return tuple(p for p in found if p.name)


def _body_facts(body: tree_sitter.Node, source: bytes) -> tuple[bool, bool, tuple[str, ...]]:
    returns_value, yields, raises = False, False, []
    stack = list(reversed(body.named_children))
    while stack:
        node = stack.pop()
        if node.type in _NESTED:
            continue
        if node.type == "return_statement":
            value = node.named_children[0] if node.named_children else None
            returns_value = returns_value or (value is not None and _text(value, source) != "None")
        elif node.type == "yield":
            yields = True
        elif node.type == "raise_statement" and node.named_children:
            raised = node.named_children[0]
            if raised.type == "call":
                raised = raised.child_by_field_name("function") or raised
            name = _text(raised, source)
            if re.fullmatch(r"[A-Za-z_][\w.]*", name) and name not in raises:
                raises.append(name)
        stack.extend(reversed(node.named_children))
    return returns_value, yields, tuple(raises)


def _is_string_statement(node: tree_sitter.Node) -> bool:
    return (
        node.type == "expression_statement"
        and bool(node.named_children)
        and node.named_children[0].type
        in (
            "string",
            "concatenated_string",
        )
    )


def _text(node: tree_sitter.Node | None, source: bytes) -> str:
    if node is None:
        return ""
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")
