"""What a run's events become in ACP, and what a client's prompt becomes in a run (cove/acp/updates.py), without
processes: each mapping checked on its own."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from acp import schema

from cove.acp.stdio import check
from cove.acp.updates import Story, plan_entries, read_prompt, transcript_updates
from cove.agent.tool_registry import load_specs
from cove.errors import InputError
from cove.protocol.codes import INVALID_REQUEST, PARSE_ERROR
from cove.protocol.events import AssistantReply, Delta, ProposedChange, ToolCalled, ToolOutput, ToolStarted


def test_every_tool_has_an_acp_kind_and_only_file_changers_are_proposable() -> None:
    specs = load_specs()
    assert {spec.kind for spec in specs.values()} <= set(get_args(schema.ToolKind))
    assert {name for name, spec in specs.items() if spec.proposable} == {"edit_file", "write_file", "undo"}
    assert specs["run_command"].kind == "execute" and specs["edit_file"].kind == "edit"


def test_a_tool_call_is_started_streamed_and_finished_under_one_id(tmp_path: Path) -> None:
    story = Story(tmp_path)
    (started,) = story.updates(ToolStarted("run_command", {"command": "pytest -q"}, "execute"))
    (first,) = story.updates(ToolOutput("collected 3 items\n"))
    (second,) = story.updates(ToolOutput("3 passed\n"))
    (finished,) = story.updates(ToolCalled("run_command", {"command": "pytest -q"}, "exit status 0\n3 passed"))
    assert (started.title, started.kind, started.status) == ("$ pytest -q", "execute", "pending")
    assert first.tool_call_id == second.tool_call_id == finished.tool_call_id == started.tool_call_id
    assert second.content[0].content.text == "collected 3 items\n3 passed\n", "the output so far, whole"
    assert finished.status == "completed"
    (next_call,) = story.updates(ToolStarted("read_file", {"path": "a.py", "start": 3}, "read"))
    assert next_call.tool_call_id != started.tool_call_id
    assert next_call.locations[0].path == str(tmp_path / "a.py") and next_call.locations[0].line == 3


def test_a_change_is_a_diff_and_a_failure_says_why(tmp_path: Path) -> None:
    story = Story(tmp_path)
    story.updates(ToolStarted("edit_file", {"path": "a.py"}, "edit"))
    change = ProposedChange("a.py", "x = 1\n", "x = 2\n")
    (edited,) = story.updates(ToolCalled("edit_file", {"path": "a.py"}, "diff", changes=[change]))
    assert [(c.type, c.path, c.old_text, c.new_text) for c in edited.content] == [
        ("diff", str(tmp_path / "a.py"), "x = 1\n", "x = 2\n")
    ]
    story.updates(ToolStarted("edit_file", {"path": "b.py"}, "edit"))
    (failed,) = story.updates(ToolCalled("edit_file", {"path": "b.py"}, "error: no such file", "no such file"))
    assert failed.status == "failed" and failed.content[0].content.text == "error: no such file"


def test_a_reply_is_shown_once_whether_or_not_it_streamed(tmp_path: Path) -> None:
    story = Story(tmp_path)
    streamed = story.updates(Delta("Hello")) + story.updates(AssistantReply("Hello", []))
    whole = story.updates(AssistantReply("Not streamed.", []))
    assert [u.content.text for u in streamed] == ["Hello"]
    assert [u.content.text for u in whole] == ["Not streamed."]


def test_plans_and_todo_lists_become_entries_with_their_status() -> None:
    plan = plan_entries("Goal: fix it.\n\n1. Read calc.py\n2) Fix add()\n- [x] done already\n- [~] doing\n")
    assert [(e.content, e.status) for e in plan] == [
        ("Read calc.py", "pending"),
        ("Fix add()", "pending"),
        ("done already", "completed"),
        ("doing", "in_progress"),
    ]
    assert [e.content for e in plan_entries("Just do it.")] == ["Just do it."]


def test_a_prompt_quotes_resources_and_keeps_a_files_buffer(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("on disk\n")
    blocks = [
        schema.TextContentBlock(type="text", text="Explain"),
        schema.ResourceContentBlock(type="resource_link", uri=(tmp_path / "b.py").as_uri(), name="b.py"),
        schema.EmbeddedResourceContentBlock(
            type="resource", resource=schema.TextResourceContents(uri=(tmp_path / "a.py").as_uri(), text="in buffer\n")
        ),
    ]
    prompt = read_prompt(blocks, tmp_path)
    assert prompt.text == "Explain\n@b.py\na.py:\n```\nin buffer\n\n```"
    assert prompt.overlay == {str(tmp_path / "a.py"): "in buffer\n"}
    with pytest.raises(InputError, match="cannot be sent to Cove"):
        read_prompt([schema.ImageContentBlock(type="image", data="AA==", mime_type="image/png")], tmp_path)
    with pytest.raises(InputError, match="empty"):
        read_prompt([schema.TextContentBlock(type="text", text="  ")], tmp_path)


def test_a_transcript_replays_without_the_bookkeeping() -> None:
    replayed = transcript_updates(
        [
            {"role": "user", "content": "Fix it"},
            {"role": "user", "content": '<system-reminder type="x">...</system-reminder>'},
            {"role": "assistant", "content": "\n(calls: read_file)"},
            {"role": "tool", "content": 'read_file({"path": "a.py"})\n1 x = 1'},
            {"role": "assistant", "content": "Done."},
        ]
    )
    assert [u.session_update for u in replayed] == [
        "user_message_chunk",
        "tool_call",
        "tool_call_update",
        "agent_message_chunk",
    ]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"garbage{", PARSE_ERROR),
        (b"[1, 2]", INVALID_REQUEST),
        (b'{"id": 1}', INVALID_REQUEST),
        (b'{"id": true, "method": "x"}', INVALID_REQUEST),
        (b'{"id": 1, "method": 5}', INVALID_REQUEST),
        (b'{"id": 1, "method": "x", "params": 3}', INVALID_REQUEST),
    ],
)
def test_lines_that_are_no_message_are_refused_with_their_error(line: bytes, code: int) -> None:
    problem = check(line)
    assert problem is not None and problem[1] == code


@pytest.mark.parametrize(
    "line",
    [b'{"jsonrpc": "2.0", "id": 1, "method": "initialize"}', b'{"id": "a", "result": {}}', b'{"method": "n"}'],
)
def test_messages_pass(line: bytes) -> None:
    assert check(line) is None
