"""The pure parts of the local actions: what a function is, how a file writes its docstrings, the docstring's
layout in each style, the test lines' checks, the commit prompt, and the TEXT stop rule."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
import tree_sitter

from cove.inference.completion.engine import WritingRequest
from cove.protocol.jobs import CompletionMode, StopRule
from cove.server.actions.commit_messages import changed_lines, clean_subject, commit_request, write_subject
from cove.server.actions.docstrings import Hole, insert_docstring, layout, one_line_body, write_docstring
from cove.server.actions.local_actions import where_tests_go
from cove.server.actions.test_skeletons import call_accepted, first_argument, module_name
from cove.server.context.code_context import PYTHON
from cove.server.context.python_functions import (
    DocstringStyle,
    FileStyle,
    docstring_style,
    file_style,
    function_at,
    function_facts,
    parameter_names_in,
)

SOURCE = """class Shelf:
    def put(self, book: str, *rest, at: int = 0, **options) -> int:
        if at < 0:
            raise ValueError("negative")
        if not book:
            raise errors.EmptyBook(book)

        def inner():
            raise KeyError("not this one")

        return at

    def scan(self):
        yield from self.books
        return None
"""


def facts_at(source: str, line: int):  # type: ignore[no-untyped-def]
    tree = tree_sitter.Parser(PYTHON).parse(source.encode())
    node = function_at(tree, line, 8)
    assert node is not None
    return function_facts(node, source.encode())


def test_a_functions_facts_come_from_its_code() -> None:
    facts = facts_at(SOURCE, 2)
    assert facts.name == "put" and facts.owner == "Shelf"
    assert [(p.name, p.annotation, p.has_default) for p in facts.parameters] == [
        ("book", "str", False),
        ("*rest", "", False),
        ("at", "int", True),
        ("**options", "", False),
    ]
    assert facts.returns == "int" and facts.returns_value and not facts.yields
    assert facts.raises == ("ValueError", "errors.EmptyBook")  # not the nested function's KeyError
    assert (facts.def_line, facts.body_line, facts.indent, facts.has_docstring) == (1, 2, "        ", False)
    scan = facts_at(SOURCE, 13)
    assert scan.yields and not scan.returns_value and scan.parameters == ()


GOOGLE = '"""Sum.\n\n    Args:\n        a (int): First.\n\n    Returns:\n        The sum.\n    """'
NUMPY = '"""Sum.\n\n    Parameters\n    ----------\n    a : int\n        First.\n    b\n        Second.\n    """'
SPHINX = '"""Sum.\n\n    :param a: First.\n    :param int b: Second.\n    :returns: The sum.\n    """'


@pytest.mark.parametrize(
    ("text", "style", "names"),
    [
        (GOOGLE, "google", ["a"]),
        (NUMPY, "numpy", ["a", "b"]),
        (SPHINX, "sphinx", ["a", "b"]),
        ('"""Sum."""', "plain", []),
    ],
)
def test_a_docstrings_style_and_the_parameters_it_names(text: str, style: DocstringStyle, names: list[str]) -> None:
    assert docstring_style(text) == style
    assert parameter_names_in(text.strip('"'), style) == names


def test_a_files_style_is_what_most_of_its_docstrings_show() -> None:
    assert file_style([GOOGLE, GOOGLE, NUMPY, '"""Plain."""']) == FileStyle("google", typed=True)
    assert file_style(['"""Plain"""', "'''\n    Next line\n    '''", "'''\n    Again\n    '''"]) == FileStyle(
        "plain", quote="'''", summary_on_next_line=True, period=False
    )
    assert file_style([]).style == "plain"


@pytest.mark.parametrize("style", ["google", "numpy", "sphinx", "plain"])
async def test_the_docstrings_layout_in_each_style_parses_and_names_every_parameter(style: DocstringStyle) -> None:
    source = "def clamp(value, low: int, high=10):\n    if low > high:\n        raise ValueError\n    return low\n"
    facts = facts_at(source, 1)
    asked: list[WritingRequest] = []

    async def write(request: WritingRequest) -> str:
        asked.append(request)
        return "the text" if len(asked) > 1 else "clamp a value"

    file = FileStyle(style, typed=style != "plain")
    docstring = await write_docstring(facts, file, source, "", "doc", write)
    after = insert_docstring(source, facts, docstring)
    written = ast.get_docstring(ast.parse(after).body[0]) or ""  # type: ignore[arg-type]
    assert written.startswith("Clamp a value.")  # capitalised, ending as the file's summaries do
    assert docstring_style(f'"""{written}"""') == style
    holes = [s for s in layout(facts, file) if isinstance(s, Hole)]
    assert len(asked) == len(holes)  # one request per hole, each extending the last one's prompt
    assert all(b.prefix.startswith(a.prefix) for a, b in itertools.pairwise(asked))
    if style != "plain":
        assert parameter_names_in(written, style) == ["value", "low", "high"]
        assert "ValueError" in written


async def test_a_summary_the_model_starts_on_the_next_line_starts_with_the_names_verb() -> None:
    source = "def get_total(items):\n    return sum(items)\n"
    facts = facts_at(source, 1)
    answers = iter(["", "sum of the items"])

    async def write(request: WritingRequest) -> str:
        return next(answers)

    docstring = await write_docstring(facts, FileStyle("plain"), source, "", "doc", write)
    assert docstring == '    """Return sum of the items."""\n'


def test_a_one_line_function_has_no_line_for_a_docstring() -> None:
    source = "def f(x: int) -> int: return x\n\ndef g(x: int) -> int:\n    return x\n"
    assert one_line_body(source, facts_at(source, 0))
    assert not one_line_body(source, facts_at(source, 3))


def test_tests_go_where_the_project_keeps_them_and_import_the_module(tmp_path: Path) -> None:
    assert where_tests_go(tmp_path, "pkg/util.py") == "pkg/test_util.py"
    (tmp_path / "tests").mkdir()
    assert where_tests_go(tmp_path, "src/pkg/util.py") == "tests/test_util.py"
    assert module_name("src/pkg/util.py") == "pkg.util"
    assert module_name("pkg/__init__.py") == "pkg"


def test_a_test_line_is_kept_only_when_it_calls_the_function_with_arguments_it_accepts() -> None:
    facts = facts_at("def clamp(value, low, high=10):\n    return value\n", 1)
    assert call_accepted("assert clamp(value=1, low=0) == 1", facts, assertion=True)
    assert call_accepted("assert clamp(1, 0, 5) == 1", facts, assertion=True)
    assert not call_accepted("assert clamp(value=1) == 1", facts, assertion=True)  # low is missing
    assert not call_accepted("assert clamp(1, 2, 3, 4) == 1", facts, assertion=True)
    assert not call_accepted("assert clamp(value=1, low=0, size=3) == 1", facts, assertion=True)
    assert not call_accepted("assert clamp(value=1, low=0)", facts, assertion=True)  # compares nothing
    assert not call_accepted("assert clamp(value=1, low=0 == 1", facts, assertion=True)
    assert call_accepted("clamp(value=1, low=0)", facts, assertion=False)


def test_the_first_argument_ends_at_a_comma_or_bracket_outside_brackets_and_strings() -> None:
    assert first_argument("[1, 2, 3], low=0) == 2") == "[1, 2, 3]"
    assert first_argument("'a, b)', 3)") == "'a, b)'"
    assert first_argument("f(x, y)) == 1") == "f(x, y)"
    assert first_argument("10") == "10"
    assert first_argument("[1, 2") == ""


def test_the_commit_prompt_pairs_changed_lines_with_subjects() -> None:
    diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n context\n-old\n+new\n+\n"
    assert changed_lines(diff, 100) == "--- a/x\n+++ b/x\n-old\n+new"
    request = commit_request("+new", [("+first", "Add the first"), ("+second", "Add the second")], "doc")
    assert request.prefix.endswith("Commit message: Add the second\n\nDiff:\n+new\nCommit message:")
    assert request.stop_at == ("\n",)
    assert clean_subject(' "Fix   the thing" ') == "Fix the thing"
    assert clean_subject("word " * 30) == ("word " * 14).strip()  # cut at a word, at most 72 characters


def test_the_text_mode_ends_before_its_first_stop_string() -> None:
    rule = StopRule(CompletionMode.TEXT, '    """', "", 0, ("\n", '"""'))
    assert rule.cut("  Return the sum") is None
    assert rule.cut('  Return the sum."""') == "Return the sum."
    assert rule.cut("\n    code") == ""  # a line break first: the text is empty (the caller decides what next)
    assert rule.finish("  cut short by the limit", ended=False) == "cut short by the limit"


async def test_a_subject_that_repeats_an_example_is_asked_for_again_without_the_examples() -> None:
    asked: list[WritingRequest] = []
    answers = iter(["Add the second", "the third thing"])

    async def write(request: WritingRequest) -> str:
        asked.append(request)
        return next(answers)

    examples = [("+first", "Add the first"), ("+second", "Add the second")]
    assert await write_subject("+third", examples, "doc", write) == "Add the third thing"
    assert "Add the first" not in asked[1].prefix and asked[1].prefix.endswith("Commit message: Add")
