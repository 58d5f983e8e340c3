"""Agent actions through the real `cove lsp`, the real daemon it starts, and pytest-lsp's client playing VS Code.

The scripted OpenAI-compatible server on loopback replays the model's decisions; the client answers approvals,
shows documents and applies edits as an editor would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from cove.server.actions.code_actions import apply_edits
from tests.agent.test_loop import repository
from tests.fim_model import write_fim_model
from tests.lsp.harness import cove_server, open_file
from tests.scripted.openai_server import completion, executor_requests, scripted_openai_server


class Editor:
    """What the client does when the server asks: answers approvals, shows documents, applies edits."""

    def __init__(self, lsp: LanguageClient, answers: list[str]) -> None:
        self.lsp, self.answers = lsp, answers
        self.asked: list[str] = []
        self.applied: list[types.WorkspaceEdit] = []
        editor = self

        @lsp.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)  # type: ignore[untyped-decorator]
        def ask(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
            editor.asked.append(params.message)
            return types.MessageActionItem(editor.answers.pop(0)) if editor.answers else None

        @lsp.feature(types.WORKSPACE_APPLY_EDIT)  # type: ignore[untyped-decorator]
        def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            editor.applied.append(params.edit)
            return types.ApplyWorkspaceEditResult(applied=True)

    @property
    def shown(self) -> list[str]:
        """The documents the server showed (pytest-lsp's client records them), read now."""
        return [Path(params.uri.removeprefix("file://")).read_text() for params in self.lsp.shown_documents]


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return completion("", [(name, json.dumps(arguments))])


async def test_a_fix_is_listed_cheaply_resolved_by_the_agent_reviewed_and_applied(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    root = repository(tmp_path)
    unsaved = "def add(a, b):\n    return a - b  # not saved yet\n"
    script = [call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"), completion("Fixed.")]
    with scripted_openai_server(script) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        async with cove_server(env, "visual-studio-code", root=root) as (lsp, result):
            assert result.capabilities.code_action_provider.resolve_provider  # type: ignore[union-attr]
            editor = Editor(lsp, ["Apply"])
            uri, _ = open_file(lsp, root / "calc.py", unsaved)
            where = types.Range(types.Position(1, 4), types.Position(1, 4))
            failing = types.Diagnostic(where, "test_add fails: add(2, 3) == -1", source="pytest")
            actions = await lsp.text_document_code_action_async(
                types.CodeActionParams(types.TextDocumentIdentifier(uri), where, types.CodeActionContext([failing]))
            )
            assert actions is not None
            titles = [a.title for a in actions]
            assert titles[0] == "Cove: fix “test_add fails: add(2, 3) == -1”"
            assert "Cove: write tests for add" in titles and "Cove: add a docstring to add" in titles
            assert not server.requests  # listing asked no model
            fix = actions[0]
            assert isinstance(fix, types.CodeAction) and fix.edit is None
            resolved = await lsp.code_action_resolve_async(fix)
            assert resolved.command is not None and resolved.command.command == "cove.apply"
            await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams(resolved.command.command, resolved.command.arguments)
            )
            task = server.requests[0][1]["messages"][1]["content"]
            shown = editor.shown
    assert "test_add fails" in task and "pytest" in task
    assert shown[0].startswith("--- a/calc.py") and "+    return a + b  # not saved yet" in editor.shown[0]
    assert editor.asked == ["Apply Cove's change to calc.py?"]
    [edit] = editor.applied
    assert edit.changes is not None
    [(edited_uri, edits)] = edit.changes.items()
    assert edited_uri == uri and apply_edits(unsaved, list(edits)) == unsaved.replace("a - b", "a + b")
    assert (root / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"  # the editor applies, not the agent


async def test_ask_explain_a_planned_task_with_approvals_undo_and_the_transcript(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    root = repository(tmp_path)
    script = [
        completion("It adds two numbers (it subtracts, in fact)."),  # cove.ask
        completion("1. Fix the operator in add()"),  # cove.agent: the plan
        call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"),
        call("todo_write", items=[{"text": "Fix the operator in add()", "status": "done"}]),
        completion("Fixed add()."),
    ]
    with scripted_openai_server(script) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted", COVE_AGENT_MODE="ask")
        async with cove_server(env, "visual-studio-code", root=root) as (lsp, _):
            editor = Editor(lsp, ["Approve", "Allow"])
            asked: Any = await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams("cove.ask", ["What does add() do?"])
            )
            task: Any = await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams("cove.agent", ["Fix add()"])
            )
            fixed = (root / "calc.py").read_text()
            undone: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.undo", []))
            transcript: Any = await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams("cove.transcript", [])
            )
            reports: list[Any] = [r for rs in lsp.progress_reports.values() for r in rs]
            shown = editor.shown
    assert asked["answer"] == "It adds two numbers (it subtracts, in fact)."
    assert (task["stopped"], task["answer"]) == ("answered", "Fixed add().")
    assert editor.asked[0] == "Cove wrote a plan. Approve it?"
    assert editor.asked[1].startswith('Cove wants to run edit_file({"path": "calc.py"')
    assert any("1. Fix the operator in add()" in text for text in shown)  # the plan was shown as a document
    assert "return a + b" in fixed and undone["text"].startswith("restored checkpoint 1 (before step 1, edit_file)")
    assert (root / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    assert "**plan**" in transcript["text"] and "edit_file" in transcript["text"]
    titles = [r.title for r in reports if isinstance(r, types.WorkDoneProgressBegin)]
    assert "Cove: Fix add()" in titles
    assert any(isinstance(r, types.WorkDoneProgressReport) and r.message == "edit_file" for r in reports)


async def test_saves_and_the_editors_problems_reach_a_run_in_progress_as_reminders(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """While the agent waits on its plan, the editor saves calc.py and shows two problems in it (`cove/diagnostics`,
    sent by both editors' plugins): the model's next request carries both as system reminders."""
    root = repository(tmp_path)
    done_todo = call("todo_write", items=[{"text": "Fix add()", "status": "done"}])
    script = [completion("1. Fix add()"), done_todo, completion("Fixed.")]
    with scripted_openai_server(script) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        async with cove_server(env, "visual-studio-code", root=root) as (lsp, _):
            uri, _ = open_file(lsp, root / "calc.py")
            problems = [
                {
                    "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 9}},
                    "message": "unused name",
                    "severity": 2,
                },
                {
                    "range": {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 12}},
                    "message": 'Operator "-" not supported',
                    "severity": 1,
                    "source": "Pylance",
                },
                {
                    "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
                    "message": "no severity: an error",
                },
            ]

            @lsp.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)  # type: ignore[untyped-decorator]
            def ask(params: types.ShowMessageRequestParams) -> types.MessageActionItem:
                lsp.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
                lsp.protocol.notify("cove/diagnostics", {"textDocument": {"uri": uri}, "diagnostics": problems})
                return types.MessageActionItem("Approve")

            done: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.agent", ["Fix"]))
    assert done["answer"] == "Fixed.", done
    after_plan = json.dumps(executor_requests(server)[1]["messages"])
    assert 'type=\\"file_saved\\"' in after_plan and "calc.py" in after_plan, after_plan
    assert "calc.py now has 2 error(s): line 1: no severity: an error" in after_plan, after_plan


def in_add(lsp: LanguageClient, root: Path) -> types.CodeActionParams:
    """calc.py opened, and the code actions asked for inside add()."""
    uri, _ = open_file(lsp, root / "calc.py")
    where = types.Range(types.Position(1, 4), types.Position(1, 4))
    return types.CodeActionParams(types.TextDocumentIdentifier(uri), where, types.CodeActionContext([]))


@pytest.mark.parametrize("enabler", ["remote server", "instruct GGUF"])
async def test_with_the_default_base_model_actions_are_listed_disabled_with_what_to_set(
    tmp_path: Path, agent_env: dict[str, str], enabler: str
) -> None:
    """Nothing configured: the actions the agent would run say why they are off and what would turn them on (those
    the local model serves are on: test_local_actions.py); commands refuse the same way; a server set in the
    editor's settings turns them on without a restart."""
    root = repository(tmp_path)
    async with cove_server(agent_env, "visual-studio-code", root=root) as (lsp, _):
        params = in_add(lsp, root)
        actions = await lsp.text_document_code_action_async(params)
        assert actions is not None
        local = [a for a in actions if a.title.endswith(" (local model)")]
        assert {a.title for a in local} == {
            "Cove: write tests for add (local model)",
            "Cove: add a docstring to add (local model)",
        }
        for action in actions:
            assert isinstance(action, types.CodeAction)
            if action in local:
                assert action.disabled is None, action
                continue
            assert action.disabled is not None, action
            assert "base model without a chat template" in action.disabled.reason
            assert "[remote] base_url" in action.disabled.reason and "instruct GGUF" in action.disabled.reason
        with pytest.raises(Exception, match="cannot plan or call tools"):  # the command's error, as the client sees it
            await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.ask", ["What is add?"]))
        assert not (Path(agent_env["XDG_RUNTIME_DIR"]) / "cove" / "daemon.sock").exists(), "no run was started"
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
        assert status["agent"]["fit"] is False and "instruct GGUF" in status["agent"]["reason"], status
        if enabler == "remote server":
            settings: dict[str, Any] = {"cove": {"remote": {"base_url": "http://127.0.0.1:9/v1"}}}
        else:  # a tiny GGUF with a chat template and a size label above the agent's minimum
            chat = write_fim_model(tmp_path / "instruct.gguf", chat=True, size_label="1.5B")
            settings = {"cove": {"model": {"path": str(chat)}}}
        lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
        for _ in range(100):
            actions = await lsp.text_document_code_action_async(params) or []
            served_by_agent = actions and not any(a.title.endswith(" (local model)") for a in actions)
            if served_by_agent and all(isinstance(a, types.CodeAction) and a.disabled is None for a in actions):
                break
        else:
            raise AssertionError(f"still disabled: {actions}")


async def test_a_client_that_cannot_show_disabled_actions_reads_it_in_the_title(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """Neovim 0.11 does not declare `codeAction.disabledSupport`: the title says the action is off."""
    root = repository(tmp_path)
    async with cove_server(agent_env, "neovim-0.11.4-inline", root=root) as (lsp, _):
        actions = await lsp.text_document_code_action_async(in_add(lsp, root))
        assert actions
        titles = sorted(a.title for a in actions)
        assert titles == [
            "Cove: add a docstring to add (local model)",
            "Cove: explain add (off: needs a chat model)",
            "Cove: write tests for add (local model)",
        ]


async def test_with_the_remote_server_down_an_action_says_which_server_and_what_to_do(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """A remote server is set (the agent is on) but does not answer: the action fails with the server's address and
    what to change, as an error the client shows; no `...`."""
    root = repository(tmp_path)
    env = dict(agent_env, COVE_REMOTE_BASE_URL="http://127.0.0.1:9/v1", COVE_REMOTE_MODEL="down")
    async with cove_server(env, "visual-studio-code", root=root) as (lsp, _):
        actions = await lsp.text_document_code_action_async(in_add(lsp, root))
        assert actions and all(isinstance(a, types.CodeAction) and a.disabled is None for a in actions)
        assert not any(a.title.endswith("(local model)") for a in actions), "a chat model is set: the agent serves"
        explain = next(a for a in actions if isinstance(a, types.CodeAction) and a.title.startswith("Cove: explain"))
        with pytest.raises(Exception, match=r"cannot reach http://127\.0\.0\.1:9/v1.*\[remote\] base_url"):
            await lsp.code_action_resolve_async(explain)


async def test_the_actions_are_found_with_the_cursor_at_the_end_of_a_line(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """Where a click in VS Code leaves the cursor: past the line's last character, where the tree has only the
    module (found in the real workbench: no action was offered there)."""
    root = repository(tmp_path)
    async with cove_server(agent_env, "visual-studio-code", root=root) as (lsp, _):
        uri, text = open_file(lsp, root / "calc.py")
        end = len(text.split("\n")[1])
        where = types.Range(types.Position(1, end), types.Position(1, end))
        params = types.CodeActionParams(types.TextDocumentIdentifier(uri), where, types.CodeActionContext([]))
        actions = await lsp.text_document_code_action_async(params)
    assert actions and "Cove: add a docstring to add (local model)" in [a.title for a in actions], actions
