"""Actions a small base model does well when it is asked as a completion, served offline by the completion model:
a docstring in the file's style, tests for a function. Each becomes a change the user reviews and applies
(`cove.apply`), as an agent's edits do.

The code decides the structure (which function, its parameters, where the test file is and what it imports); the
model writes what follows a prompt that ends where the text goes, one piece at a time (docstrings.py,
test_skeletons.py); what it writes is checked before it is proposed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath

import tree_sitter

from cove.errors import InputError, ModelError
from cove.inference.completion.engine import WritingRequest
from cove.protocol.events import ProposedChange
from cove.server.actions.docstrings import insert_docstring, one_line_body, write_docstring
from cove.server.actions.test_skeletons import module_name, write_tests
from cove.server.context.python_functions import (
    FunctionFacts,
    docstring_style,
    docstrings,
    file_style,
    function_at,
    function_facts,
)

#: The code actions served by the completion model when no model fit for the agent is configured.
LOCAL_ACTIONS = ("docstring", "tests")

Write = Callable[[WritingRequest], Awaitable[str]]


def function_for(tree: tree_sitter.Tree, source: str, line: int) -> tuple[tree_sitter.Node, FunctionFacts]:
    """The function around `line` and its facts; InputError when there is none."""
    lines = source.split("\n")
    text = lines[line] if 0 <= line < len(lines) else ""
    node = function_at(tree, line, len(text) - len(text.lstrip())) if text.strip() else None
    if node is None:
        raise InputError(f"no Python function at line {line + 1}; put the cursor inside one")
    return node, function_facts(node, source.encode("utf-8"))


async def propose_docstring(tree: tree_sitter.Tree, source: str, line: int, path: str, write: Write) -> ProposedChange:
    """A docstring for the function at `line` of `path`, in the style of the file's other docstrings."""
    _, facts = function_for(tree, source, line)
    if facts.has_docstring:
        raise InputError(f"{facts.name} has a docstring already")
    if one_line_body(source, facts):
        raise InputError(f"{facts.name} is written on one line; put its body on the next line first")
    encoded = source.encode("utf-8")
    documented = docstrings(tree, encoded)
    style = file_style([text for _, text in documented])
    example = nearest_example(documented, source, style.style, facts.def_line)
    docstring = await write_docstring(facts, style, source, example, f"{path}#docstring", write)
    return ProposedChange(path, source, insert_docstring(source, facts, docstring))


def nearest_example(documented: list[tuple[tree_sitter.Node, str]], source: str, style: str, near: int) -> str:
    """The header and docstring of the documented function nearest to line `near` whose docstring is in `style`."""
    lines = source.split("\n")
    best: tuple[int, str] | None = None
    for node, text in documented:
        if node.type != "function_definition" or docstring_style(text) != style:
            continue
        body = node.child_by_field_name("body")
        if body is None or not body.named_children:
            continue
        shown = "\n".join(lines[node.start_point[0] : body.named_children[0].end_point[0] + 1])
        distance = abs(node.start_point[0] - near)
        if best is None or distance < best[0]:
            best = (distance, shown)
    return best[1] if best else ""


def where_tests_go(root: Path, path: str) -> str:
    """Where the tests of `path` (relative to `root`) go, as the project lays them out: `tests/` or `test/` when it
    has one, else beside the module."""
    stem = PurePosixPath(path).stem
    for folder in ("tests", "test"):
        if (root / folder).is_dir():
            return f"{folder}/test_{stem}.py"
    return str(PurePosixPath(path).with_name(f"test_{stem}.py"))


async def propose_tests(
    tree: tree_sitter.Tree, source: str, line: int, path: str, root: Path, existing: str | None, write: Write
) -> ProposedChange:
    """Tests for the function at `line` of `path`, added to its test file (created when missing)."""
    _, facts = function_for(tree, source, line)
    if facts.name.startswith("test_"):
        raise InputError(f"{facts.name} is a test already")
    target = where_tests_go(root, path)
    head = existing or ""
    imports = f"from {module_name(path)} import {facts.owner or facts.name}"
    if not re.search(rf"^{re.escape(imports)}\b", head, re.M):
        head = _with_import(head, imports)
    tests = await write_tests(facts, source, path, head, f"{target}#tests", write)
    if not tests:
        raise ModelError(
            f"the local model wrote no test line for {facts.name} that parses and calls it rightly; a chat model "
            "writes better tests (set [remote] or an instruct GGUF as [model] path, and the agent writes them)"
        )
    if any("pytest." in test for test in tests) and not re.search(r"^import pytest\b", head, re.M):
        head = f"import pytest\n\n{head}"  # a third-party import before the project's
    after = head.rstrip("\n") + "\n\n\n" + "\n\n\n".join(tests) + "\n"
    return ProposedChange(target, existing, after)


def _with_import(text: str, line: str) -> str:
    """`text` with the import `line` after its last top-level import (at its start when it has none)."""
    lines = text.split("\n") if text.strip() else []
    last = max((i for i, s in enumerate(lines) if re.match(r"(import|from)\s", s)), default=-1)
    if last == -1:
        return line + "\n" + ("\n\n" + text if lines else "")
    return "\n".join([*lines[: last + 1], line, *lines[last + 1 :]])
