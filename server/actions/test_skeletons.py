"""Tests for a function, written by the local model inside a structure the code lays out.

Asked for whole tests, a small base model loops, leaves out arguments, and gives test functions parameters that
pytest takes for fixtures. So the code writes the test functions (one for the normal cases, one per exception the
function raises by name) and each line up to a value: `assert clamp(value=`, the model gives the value, `, low=`,
the model gives the next, `) == `, the model gives the expected result. A line is kept only if it parses and calls
the function with arguments its parameters accept; the values are the model's, for the user to review.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath

from cove.inference.completion.engine import WritingRequest
from cove.server.context.python_functions import FunctionFacts

#: Assertions wanted in the test of the normal cases, and lines the model may write to get them.
ASSERTIONS = 3
TRIES = 5
#: Exceptions that get a test of their own.
MAX_RAISES = 2
#: Characters of an existing test file put into the prompt (its end).
TEST_FILE_CHARS = 1500

Write = Callable[[WritingRequest], Awaitable[str]]


def module_name(path: str) -> str:
    """The module name of `path` (relative to the project root; a `src/` layout's folder is not part of it)."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "module"


async def write_tests(
    facts: FunctionFacts, source: str, path: str, head: str, document: str, write: Write
) -> list[str]:
    """Test functions for `facts`' function of `path`; `head`: the test file so far (with the import). Empty when
    the model wrote no line that passes the checks."""
    lines = source.split("\n")
    function = "\n".join(lines[facts.def_line : facts.end_line + 1])[:TEST_FILE_CHARS]
    owner = f"class {facts.owner}:\n    ...\n\n" if facts.owner else ""
    context = f"# {path}\n{owner}{function}\n\n\n"
    base = head.rstrip("\n")[-TEST_FILE_CHARS:] + "\n\n\n" if head.strip() else ""
    test_name = f"test_{facts.owner.lower()}_{facts.name.lstrip('_')}" if facts.owner else f"test_{facts.name}"
    tests: list[str] = []

    async def line(prompt: str) -> str:
        return await write(WritingRequest(document, base + prompt, context=context, max_tokens=40))

    async def call_line(so_far: str, start: str, assertion: bool) -> str | None:
        """`start` + the call with each required argument by name (the model gives the value after the name it
        is shown) + for an assertion, `==` and the expected value; None when the model gave no value."""
        text = start
        for number, parameter in enumerate(required):
            text += f"{', ' if number else ''}{parameter.name}="
            value = first_argument(await line(so_far + text))
            if not value:
                return None
            text += value
        text += ")"
        if assertion:
            text += " == "
            expected = (await line(so_far + text)).strip()
            if not expected:
                return None
            text += expected
        return text

    required = [p for p in facts.parameters if not p.has_default and not p.name.startswith("*")]
    # The normal cases.
    body = f"def {test_name}():\n"
    setup = ""
    if facts.owner:
        start = f"    instance = {facts.owner}("
        made = start + await line(body + start)
        if _parses(made.strip()):
            setup = made + "\n"
    body += setup
    call = f"instance.{facts.name}(" if setup else f"{facts.name}(" if not facts.owner else ""
    if call:
        kept: set[str] = set()  # the calls asserted on: one expected value each
        for _ in range(TRIES):
            if len(kept) == ASSERTIONS:
                break
            written = await call_line(body, f"    assert {call}", assertion=True)
            if written is not None and call_accepted(written.strip(), facts, assertion=True):
                called = ast.dump(ast.parse(written.strip()).body[0].test.left)  # type: ignore[attr-defined]
                if called not in kept:
                    kept.add(called)
                    body += written + "\n"
        if kept:
            tests.append(body.rstrip("\n"))
    # One test per exception it raises by name.
    for exception in facts.raises[:MAX_RAISES] if call else ():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", exception.split(".")[-1]).lower()
        test = f"def {test_name}_raises_{snake}():\n{setup}    with pytest.raises({exception}):\n"
        written = await call_line(test, f"        {call}", assertion=False)
        if written is not None and call_accepted(written.strip(), facts, assertion=False):
            tests.append(test + written)
    return tests


def first_argument(text: str) -> str:
    """The first argument of a call's written arguments: up to the first comma or closing bracket outside any
    bracket or string."""
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        elif char in ",)" and not depth:
            return text[:index].strip()
    return text.strip() if _parses(text.strip()) else ""


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def call_accepted(text: str, facts: FunctionFacts, assertion: bool) -> bool:
    """`text` is one statement (an assertion that compares, or a call) that calls the function with a number of
    positional and keyword arguments its parameters accept."""
    try:
        module = ast.parse(text)
    except SyntaxError:
        return False
    if len(module.body) != 1:
        return False
    statement = module.body[0]
    if assertion and not (isinstance(statement, ast.Assert) and isinstance(statement.test, ast.Compare)):
        return False
    if not assertion and not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return False
    calls = [node for node in ast.walk(statement) if isinstance(node, ast.Call) and _name_of(node.func) == facts.name]
    return bool(calls) and _arity_ok(calls[0], facts)


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _arity_ok(call: ast.Call, facts: FunctionFacts) -> bool:
    names = [p.name for p in facts.parameters]
    plain = [n for n in names if not n.startswith("*")]
    star, double_star = (
        any(n.startswith("*") and not n.startswith("**") for n in names),
        any(n.startswith("**") for n in names),
    )
    keywords = [k.arg for k in call.keywords if k.arg is not None]
    if len(call.args) > len(plain) and not star:
        return False
    if any(k not in plain for k in keywords) and not double_star:
        return False
    given = set(plain[: len(call.args)]) | set(keywords)
    return all(p.name in given or p.has_default for p in facts.parameters if not p.name.startswith("*"))
