"""`cove acp` driven by the Agent Client Protocol's own Python SDK (its client side, as an editor uses it), through
the real daemon it starts, with the scripted OpenAI-compatible server deciding each step of the agent.

Everything but the model's decisions is real: the `cove acp` process, the daemon process and its SQLite store, the
tools, bubblewrap around commands, checkpoints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import schema

from tests.acp.client import RecordingClient, call, cove_acp
from tests.agent.test_loop import repository
from tests.scripted.openai_server import ScriptedOpenAIServer, completion, scripted_openai_server

FIXED = "def add(a, b):\n    return a + b\n"
BROKEN = "def add(a, b):\n    return a - b\n"


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[ScriptedOpenAIServer]:
    with scripted_openai_server(request.param) as server:
        yield server


def env_for(agent_env: dict[str, str], server: ScriptedOpenAIServer, **settings: str) -> dict[str, str]:
    """The agent's model is the scripted server; the run starts executing at once unless a test plans first."""
    return dict(
        agent_env,
        COVE_REMOTE_BASE_URL=server.url,
        COVE_REMOTE_MODEL="scripted",
        COVE_AGENT_PLAN_FIRST="false",
        **settings,
    )


async def new_session(conn: Any, root: Path, **params: Any) -> schema.NewSessionResponse:
    return await asyncio.wait_for(conn.new_session(cwd=str(root), mcp_servers=[], **params), 60)


async def prompt(conn: Any, session_id: str, *blocks: Any) -> schema.PromptResponse:
    return await asyncio.wait_for(conn.prompt(session_id=session_id, prompt=list(blocks)), 120)


ANSWER = [call("read_file", path="calc.py"), completion("add() subtracts b from a: it returns a - b.")]


@pytest.mark.parametrize("scripted", [ANSWER], indirect=True)
async def test_a_question_is_answered_with_its_reads_and_a_streamed_answer(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient()
    async with cove_acp(client, env_for(agent_env, scripted), root) as conn:
        hello = client.hello
        assert hello is not None
        session = await new_session(conn, root)
        done = await prompt(conn, session.session_id, acp.text_block("What does add() in calc.py do?"))
    assert hello.agent_info is not None and hello.agent_info.name == "cove"
    capabilities = hello.agent_capabilities
    assert capabilities is not None and capabilities.load_session
    assert capabilities.prompt_capabilities is not None and capabilities.prompt_capabilities.embedded_context
    assert session.modes is not None and session.modes.current_mode_id == "auto-read"
    assert {mode.id for mode in session.modes.available_modes} == {"ask", "auto-read", "full-auto"}
    (commands,) = client.of("available_commands_update")
    assert {"undo", "checkpoints", "memory"} <= {command.name for command in commands.available_commands}
    assert done.stop_reason == "end_turn"
    (started,) = client.of("tool_call")
    assert (started.kind, started.title, started.status) == ("read", "read_file calc.py", "pending")
    assert started.locations[0].path == str(root / "calc.py")
    (finished,) = client.of("tool_call_update")
    assert finished.tool_call_id == started.tool_call_id and finished.status == "completed"
    assert "return a - b" in finished.content[0].content.text
    chunks = client.of("agent_message_chunk")
    assert len(chunks) > 3, "the answer streams word by word, as the scripted server sends it"
    assert client.said() == "add() subtracts b from a: it returns a - b."


EDIT = [call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"), completion("Fixed add().")]


@pytest.mark.parametrize("scripted", [EDIT, EDIT], indirect=True, ids=["allowed", "rejected"])
async def test_an_edit_asks_permission_and_is_honoured_exactly(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer, request: pytest.FixtureRequest
) -> None:
    allowed = request.node.callspec.id == "allowed"
    root = repository(tmp_path)
    client = RecordingClient(answers=["allow-once" if allowed else "reject"])
    async with cove_acp(client, env_for(agent_env, scripted), root) as conn:
        session = await new_session(conn, root)
        done = await prompt(conn, session.session_id, acp.text_block("Fix add() in calc.py."))
    assert done.stop_reason == "end_turn"
    ((asked, options),) = client.permissions
    (started,) = client.of("tool_call")
    assert started.kind == "edit" and asked.tool_call_id == started.tool_call_id
    assert [(o.option_id, o.kind) for o in options] == [
        ("allow-once", "allow_once"),
        ("allow-always", "allow_always"),
        ("reject", "reject_once"),
    ]
    (finished,) = client.of("tool_call_update")
    path = str(root / "calc.py")
    if allowed:
        assert (root / "calc.py").read_text() == FIXED
        assert finished.status == "completed"
        (diff,) = finished.content
        assert (diff.type, diff.path, diff.old_text, diff.new_text) == ("diff", path, BROKEN, FIXED)
        assert client.writes == {path: FIXED}, "the editor's buffer gets the change too"
    else:
        assert (root / "calc.py").read_text() == BROKEN
        assert finished.status == "failed" and "did not approve" in finished.content[0].content.text
        assert client.writes == {}


TWO_COMMANDS = [
    call("run_command", command="echo one"),
    call("run_command", command="echo two && cat ../secret.txt"),
    completion("Both ran."),
]


@pytest.mark.parametrize("scripted", [TWO_COMMANDS], indirect=True)
async def test_allow_always_covers_the_program_and_commands_run_in_the_sandbox(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    (tmp_path / "secret.txt").write_text("SECRET beside the workspace")
    client = RecordingClient(answers=["allow-always"])
    async with cove_acp(client, env_for(agent_env, scripted), root) as conn:
        session = await new_session(conn, root)
        await prompt(conn, session.session_id, acp.text_block("Run echo twice."))
    assert len(client.permissions) == 1, "echo was allowed always: the second command is not asked"
    assert [c.kind for c in client.of("tool_call")] == ["execute", "execute"]
    done = [u for u in client.of("tool_call_update") if u.status == "completed"]
    assert [u.content[-1].content.text.split("\n")[0].split(" (")[0] for u in done] == [
        "exit status 0",
        "exit status 1",
    ]
    assert "sandbox" in done[0].content[-1].content.text
    assert "No such file or directory" in done[1].content[-1].content.text
    assert not any("SECRET" in str(body) for _headers, body in scripted.requests), "nothing outside reached the model"
    streamed = [u for u in client.of("tool_call_update") if u.status == "in_progress"]
    assert streamed and "one" in streamed[0].content[0].content.text, "a command's output streams into its card"


LONG_COMMAND = [call("run_command", command="echo started; sleep 60; echo never"), completion("unreachable")]


@pytest.mark.parametrize("scripted", [LONG_COMMAND], indirect=True)
async def test_cancel_kills_the_running_command_and_the_turn_ends_cancelled(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient()
    started = asyncio.Event()
    client.watch = lambda update: (
        started.set() if update.session_update == "tool_call_update" and update.status == "in_progress" else None
    )
    async with cove_acp(client, env_for(agent_env, scripted, COVE_AGENT_MODE="full-auto"), root) as conn:
        session = await new_session(conn, root)
        turn = asyncio.ensure_future(prompt(conn, session.session_id, acp.text_block("Run the slow thing.")))
        await asyncio.wait_for(started.wait(), 60)
        asked = time.monotonic()
        await conn.cancel(session_id=session.session_id)
        done = await turn
        waited = time.monotonic() - asked
    assert done.stop_reason == "cancelled"
    assert waited < 10, f"the turn ended {waited:.1f} s after the cancel: the command was not killed"
    (finished,) = [u for u in client.of("tool_call_update") if u.status in ("completed", "failed")]
    assert finished.status == "failed" and "cancelled" in finished.content[0].content.text
    pgrep = await asyncio.create_subprocess_exec("pgrep", "-f", "sleep 60", stdout=asyncio.subprocess.PIPE)
    left = (await pgrep.communicate())[0].decode()
    assert not left, f"the command outlived the cancel: {left}"


BUFFER = "def add(a, b):\n    return a - b  # edited in the editor, not saved\n"
READ = [call("read_file", path="calc.py"), completion("It subtracts.")]


@pytest.mark.parametrize("scripted", [READ], indirect=True)
async def test_a_buffer_sent_with_the_prompt_wins_over_the_disk(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient()
    buffer = schema.EmbeddedResourceContentBlock(
        type="resource",
        resource=schema.TextResourceContents(uri=(root / "calc.py").as_uri(), text=BUFFER, mime_type="text/x-python"),
    )
    async with cove_acp(client, env_for(agent_env, scripted), root) as conn:
        session = await new_session(conn, root)
        await prompt(conn, session.session_id, acp.text_block("What does this do?"), buffer)
    (read,) = client.of("tool_call_update")
    assert "edited in the editor, not saved" in read.content[0].content.text
    assert (root / "calc.py").read_text() == BROKEN
    task = scripted.requests[0][1]["messages"][1]["content"]
    assert "calc.py:\n```\n" + BUFFER in task, "the resource is quoted in the task with its place"


TWO_TURNS = [*EDIT, completion("Nothing else to do.")]


@pytest.mark.parametrize("scripted", [TWO_TURNS], indirect=True)
async def test_sessions_are_listed_loaded_with_their_history_and_undone(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    env = env_for(agent_env, scripted, COVE_AGENT_MODE="full-auto")
    first = RecordingClient()
    async with cove_acp(first, env, root) as conn:
        session = await new_session(conn, root)
        await prompt(conn, session.session_id, acp.text_block("Fix add() in calc.py."))
    assert first.permissions == [], "full-auto asks nothing"
    assert (root / "calc.py").read_text() == FIXED
    again = RecordingClient()
    async with cove_acp(again, env, root) as conn:  # another editor window, or the editor restarted
        listed = await conn.list_sessions(cwd=str(root))
        loaded = await conn.load_session(cwd=str(root), session_id=session.session_id, mcp_servers=[])
        replayed = list(again.updates)
        undone = await prompt(conn, session.session_id, acp.text_block("/undo"))
        checkpoints = await prompt(conn, session.session_id, acp.text_block("/checkpoints"))
    assert [s.session_id for s in listed.sessions] == [session.session_id]
    assert listed.sessions[0].cwd == str(root)
    assert loaded is not None and loaded.modes is not None and loaded.modes.current_mode_id == "full-auto"
    kinds = [u.session_update for u in replayed]
    assert kinds[0] == "user_message_chunk" and replayed[0].content.text == "Fix add() in calc.py."
    assert "tool_call" in kinds and replayed[-1].content.text == "Fixed add()."
    assert undone.stop_reason == checkpoints.stop_reason == "end_turn"
    assert (root / "calc.py").read_text() == BROKEN, "/undo restored the file"
    said = again.said()
    assert "restored calc.py" in said and "before edit_file (step 1)" in said


@pytest.mark.parametrize("scripted", [EDIT], indirect=True)
async def test_the_mode_chosen_in_the_client_holds_for_the_next_turn(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient()
    async with cove_acp(client, env_for(agent_env, scripted), root) as conn:
        session = await new_session(conn, root)
        with pytest.raises(acp.RequestError, match="unknown mode"):
            await conn.set_session_mode(session_id=session.session_id, mode_id="yolo")
        await conn.set_session_mode(session_id=session.session_id, mode_id="full-auto")
        await prompt(conn, session.session_id, acp.text_block("Fix add() in calc.py."))
    assert client.permissions == [] and (root / "calc.py").read_text() == FIXED
