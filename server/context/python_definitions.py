"""What a Python module defines at its top level, as a completion prompt shows it: functions and classes by their
signature and first docstring line, classes with their constructor and members' signatures (shown when the code near
the cursor uses them), and constants and type aliases by their first line.

Parsed with tree-sitter once per file version (the caller keys on the file's mtime).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import tree_sitter

from cove.server.context.code_context import PYTHON

#: A constant's or alias's line is cut after this many characters.
VALUE_CHARS = 100


@dataclass(frozen=True)
class TopLevelDefinition:
    """One top-level name of a module: `text` is what the prompt shows for it; a class's members (methods, class
    attributes) are kept apart, by name, to be shown when used."""

    name: str
    kind: str  # "function" | "class" | "constant"
    text: str
    members: dict[str, str] = field(default_factory=dict)
    #: The members shown whatever the code uses (a constructor, a dataclass's first fields).
    always: tuple[str, ...] = ()

    def render(self, used: Collection[str] = ()) -> str:
        """The definition with the members in `used` (and the constructor) under a class's header."""
        shown = [text for name, text in self.members.items() if name in used or name in self.always]
        if not shown:
            return self.text + ("\n    ..." if self.kind != "constant" else "")
        return self.text + "\n" + "\n".join(shown)

    def header(self) -> str:
        """The first line alone: what is left when the budget is short."""
        return self.text.split("\n", 1)[0]


def definitions(source: bytes, parser: tree_sitter.Parser | None = None) -> dict[str, TopLevelDefinition]:
    """The module's top-level definitions by name, in source order (a later one of the same name wins)."""
    tree = (parser or tree_sitter.Parser(PYTHON)).parse(source)
    found: dict[str, TopLevelDefinition] = {}
    for node in tree.root_node.named_children:
        definition = _definition(source, node)
        if definition is not None:
            found.pop(definition.name, None)
            found[definition.name] = definition
    return found


def _definition(source: bytes, node: tree_sitter.Node) -> TopLevelDefinition | None:
    inner = node.child_by_field_name("definition") if node.type == "decorated_definition" else node
    if inner is None:
        return None
    if inner.type in ("function_definition", "class_definition"):
        name, body = inner.child_by_field_name("name"), inner.child_by_field_name("body")
        if name is None or body is None or not name.text:
            return None
        text = _text(source, inner.start_byte, body.start_byte).rstrip() + _docstring(body, "    ")
        if inner.type == "function_definition":
            return TopLevelDefinition(name.text.decode(), "function", text)
        members = _members(source, body)
        fields = [member for member, line in members.items() if ":" in line and "(" not in line][:4]
        always = ("__init__",) if "__init__" in members else tuple(fields)
        return TopLevelDefinition(name.text.decode(), "class", text, members, always)
    if inner.type == "type_alias_statement" and inner.named_children:  # type X = ... (3.12)
        return _constant(source, inner, inner.named_children[0])
    if inner.type == "expression_statement" and inner.named_children:
        assignment = inner.named_children[0]
        left = assignment.child_by_field_name("left") if assignment.type == "assignment" else None
        if left is not None and left.type == "identifier":
            return _constant(source, assignment, left)
    return None


def _constant(source: bytes, node: tree_sitter.Node, name: tree_sitter.Node) -> TopLevelDefinition | None:
    if not name.text or name.text.startswith(b"__"):  # __all__, __version__: not what code uses
        return None
    line = _text(source, node.start_byte, node.end_byte).split("\n", 1)[0]
    if len(line) > VALUE_CHARS:
        line = line[:VALUE_CHARS] + " ..."
    return TopLevelDefinition(name.text.decode(), "constant", line)


def _members(source: bytes, body: tree_sitter.Node) -> dict[str, str]:
    """A class body's methods (signature line and first docstring line) and class attributes (their line)."""
    members: dict[str, str] = {}
    for node in body.named_children:
        inner = node.child_by_field_name("definition") if node.type == "decorated_definition" else node
        if inner is None:
            continue
        if inner.type == "function_definition":
            name, method_body = inner.child_by_field_name("name"), inner.child_by_field_name("body")
            if name is not None and method_body is not None and name.text:
                signature = _text(source, inner.start_byte, method_body.start_byte).rstrip()
                members[name.text.decode()] = "    " + signature + _docstring(method_body, "        ")
        elif inner.type == "expression_statement" and inner.named_children:
            constant = _definition(source, inner)
            if constant is not None:
                members[constant.name] = "    " + constant.text
    return members


def _docstring(body: tree_sitter.Node, indent: str) -> str:
    first = body.named_children[0] if body.named_children else None
    if first is None or first.type != "expression_statement" or not first.text:
        return ""
    lines = first.text.decode("utf-8", "replace").strip().split("\n")
    line = lines[0]
    if not line.startswith(('"""', "'''", '"', "'")):
        return ""
    if line.lstrip("rbuRBU") in ('"""', "'''") and len(lines) > 1:  # the text starts on the next line
        line = line + next((rest.strip() for rest in lines[1:] if rest.strip()), "")
    return f"\n{indent}{line}"


def _text(source: bytes, start: int, end: int) -> str:
    return source[start:end].decode("utf-8", "replace")
