"""Local actions through the real `cove lsp` and the real default model: with nothing configured, a docstring in
the file's style and tests for a function are written by the completion model and applied after review; a commit
message is written for what is staged in a real git repository."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from cove.server.actions.code_actions import apply_edits
from tests.lsp.harness import cove_server, open_file
from tests.lsp.test_agent_actions import Editor

GOOGLE_STYLE = '''import math


def area(radius):
    """Return the area of a circle.

    Args:
        radius: The circle's radius.

    Returns:
        The area.
    """
    return math.pi * radius**2


def clamp(value, low, high=10):
    if low > high:
        raise ValueError("low > high")
    return max(low, min(high, value))
'''


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "shapes.py").write_text(GOOGLE_STYLE)
    return root


async def resolve_and_apply(lsp: LanguageClient, editor: Editor, uri: str, line: int, title: str) -> Any:
    """The action called `title` at `line`, resolved, then `cove.apply`d as the editor's click would."""
    where = types.Range(types.Position(line, 4), types.Position(line, 4))
    params = types.CodeActionParams(types.TextDocumentIdentifier(uri), where, types.CodeActionContext([]))
    actions = await lsp.text_document_code_action_async(params)
    assert actions is not None
    chosen = next(a for a in actions if isinstance(a, types.CodeAction) and a.title == title)
    assert chosen.disabled is None
    resolved = await lsp.code_action_resolve_async(chosen)
    assert resolved.command is not None and resolved.command.command == "cove.apply"
    command = types.ExecuteCommandParams(resolved.command.command, resolved.command.arguments)
    return await lsp.workspace_execute_command_async(command)


async def test_a_docstring_in_the_files_style_written_by_the_local_model_reviewed_and_applied(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    root = project(tmp_path)
    async with cove_server(agent_env, "visual-studio-code", root=root) as (lsp, _):
        editor = Editor(lsp, ["Apply"])
        uri, text = open_file(lsp, root / "shapes.py")
        title = "Cove: add a docstring to clamp (local model)"
        assert await resolve_and_apply(lsp, editor, uri, 16, title) == {"applied": True}
    assert editor.asked == ["Apply Cove's change to shapes.py?"]  # the diff was shown for review first
    assert "+    Args:" in editor.shown[0]
    changes = editor.applied[0].changes
    assert changes is not None
    after = apply_edits(text, list(changes[uri]))
    function = next(n for n in ast.parse(after).body if isinstance(n, ast.FunctionDef) and n.name == "clamp")
    docstring = ast.get_docstring(function) or ""
    # The file's style (Google), every parameter by its name, the return value and the exception it raises.
    assert "\nArgs:\n    value: " in docstring and "\n    low: " in docstring and "\n    high: " in docstring
    assert "\nReturns:\n" in docstring and "\nRaises:\n    ValueError: " in docstring
    assert docstring.split("\n")[0].strip(), "a summary line"
    assert after.replace(function_docstring_lines(after, function), "") == text


def function_docstring_lines(text: str, function: ast.FunctionDef) -> str:
    docstring = function.body[0]
    lines = text.split("\n")
    return "\n".join(lines[docstring.lineno - 1 : docstring.end_lineno]) + "\n"


async def test_tests_for_a_function_written_by_the_local_model_into_the_projects_test_folder(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    root = project(tmp_path)
    async with cove_server(agent_env, "visual-studio-code", root=root) as (lsp, _):
        editor = Editor(lsp, ["Apply"])
        uri, _ = open_file(lsp, root / "shapes.py")
        assert await resolve_and_apply(lsp, editor, uri, 16, "Cove: write tests for clamp (local model)") == {
            "applied": True
        }
    edit = editor.applied[0]
    assert edit.document_changes is not None  # a new file: created, then filled
    created, filled = edit.document_changes
    assert isinstance(created, types.CreateFile) and created.uri == (root / "tests" / "test_shapes.py").as_uri()
    assert isinstance(filled, types.TextDocumentEdit)
    first = filled.edits[0]
    assert isinstance(first, types.TextEdit)
    test_file = first.new_text
    module = ast.parse(test_file)
    assert "\nfrom shapes import clamp\n" in f"\n{test_file}"
    tests = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    assert tests and all(t.name.startswith("test_clamp") and not t.args.args for t in tests), test_file
    for call in (n for n in ast.walk(module) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "clamp"):
        assert 2 <= len(call.args) + len(call.keywords) <= 3, ast.unparse(call)  # value, low and maybe high


def git(root: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=Cove Tests", "-c", "user.email=tests@cove.invalid"]
    return subprocess.run(["git", *identity, *arguments], cwd=root, check=True, capture_output=True, text=True).stdout


async def test_a_commit_message_for_the_staged_changes(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = project(tmp_path)
    git(root, "init", "-q")
    git(root, "add", "shapes.py")
    git(root, "commit", "-qm", "Add the area of a circle")
    (root / "shapes.py").write_text(GOOGLE_STYLE + "\n\ndef perimeter(radius):\n    return 2 * math.pi * radius\n")
    async with cove_server(agent_env, "visual-studio-code", root=root) as (lsp, _):
        with pytest.raises(Exception, match="nothing is staged"):
            await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.commitMessage", []))
        git(root, "add", "shapes.py")
        answer: Any = await lsp.workspace_execute_command_async(
            types.ExecuteCommandParams("cove.commitMessage", [root.as_uri()])
        )
    message = answer["message"]
    assert message and "\n" not in message and len(message) <= 72, message
    assert git(root, "diff", "--cached", "--name-only") == "shapes.py\n", "nothing committed: the user reviews first"
