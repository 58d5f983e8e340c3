"""`cove acp` driven by the Agent Client Protocol's own Python SDK (its client side, as an editor uses it), through
the real daemon it starts, with the scripted OpenAI-compatible server deciding each step of the agent.

Everything but the model's decisions is real: the `cove acp` process, the daemon process and its SQLite store, the
tools, bubblewrap around commands, checkpoints.
"""

from __future__ import annotations

import asyncio
import sys
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
    scripted = {"COVE_REMOTE_BASE_URL": server.url, "COVE_REMOTE_MODEL": "scripted", "COVE_AGENT_PLAN_FIRST": "false"}
    return agent_env | scripted | settings


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
    assert listed.sessions[0].title == "Fix add() in calc.py.", "a session is listed by its first message"
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


UNSAVED = "def add(a, b):\n    # checked in the editor, not saved yet\n    return a - b\n"
READ_THEN_EDIT = [
    call("read_file", path="calc.py"),
    call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"),
    completion("Fixed the buffer."),
]


@pytest.mark.parametrize("scripted", [READ_THEN_EDIT], indirect=True)
async def test_the_clients_unsaved_buffer_is_what_the_agent_reads_and_edits(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    path = str(root / "calc.py")
    client = RecordingClient(buffers={path: UNSAVED})
    async with cove_acp(client, env_for(agent_env, scripted, COVE_AGENT_MODE="full-auto"), root) as conn:
        session = await new_session(conn, root)
        await prompt(conn, session.session_id, acp.text_block("Fix add()."))
    assert path in client.reads, "the file was asked of the client (fs/read_text_file)"
    read, edited = [u for u in client.of("tool_call_update") if u.status == "completed"]
    assert "checked in the editor, not saved yet" in read.content[0].content.text
    (diff,) = edited.content
    assert diff.old_text == UNSAVED and diff.new_text == UNSAVED.replace("a - b", "a + b")
    assert client.buffers[path] == UNSAVED.replace("a - b", "a + b"), "the edit reached the editor's buffer"


PLAN_ITEMS = ("Change `a - b` to `a + b` in calc.py", "Say it is done")
PLAN = f"1. {PLAN_ITEMS[0]}\n2. {PLAN_ITEMS[1]}"
PLANNED = [
    completion(PLAN),  # the planner
    call("edit_file", path="calc.py", old_text="a - b", new_text="a + b"),
    call("todo_write", items=[{"text": t, "status": "done"} for t in PLAN_ITEMS]),
    completion("Done."),
]


@pytest.mark.parametrize("scripted", [PLANNED], indirect=True)
async def test_a_plan_is_shown_and_approved_through_the_permission_prompt(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient(answers=["allow-once", "allow-once"])  # the plan, then the edit
    env = env_for(agent_env, scripted, COVE_AGENT_PLAN_FIRST="true")
    async with cove_acp(client, env, root) as conn:
        session = await new_session(conn, root)
        done = await prompt(conn, session.session_id, acp.text_block("Fix add() in calc.py."))
    assert done.stop_reason == "end_turn" and (root / "calc.py").read_text() == FIXED
    (asked, options), (edit, _) = client.permissions
    assert edit.tool_call_id == client.of("tool_call")[0].tool_call_id
    assert asked.title == "Approve the plan" and PLAN in asked.content[0].content.text
    assert [o.option_id for o in options] == ["allow-once", "reject"]
    plans = client.of("plan")
    assert [e.content for e in plans[0].entries] == list(PLAN_ITEMS)
    assert [e.status for e in plans[-1].entries] == ["completed", "completed"], "the todo list, done"


MCP_SERVER = Path(__file__).parent.parent / "data" / "mcp_tickets_server.py"
TICKET = [
    call("search_tools", query="look up a ticket in the issue tracker"),
    call("mcp__tickets__lookup_ticket", number=7),
    completion("Ticket 7 is about trailing commas."),
]


@pytest.mark.parametrize("scripted", [TICKET], indirect=True)
async def test_the_clients_mcp_server_joins_the_sessions_tools(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient()
    server = schema.McpServerStdio(name="tickets", command=sys.executable, args=[str(MCP_SERVER)], env=[])
    async with cove_acp(client, env_for(agent_env, scripted, COVE_SANDBOX_MCP="false"), root) as conn:
        session = await asyncio.wait_for(conn.new_session(cwd=str(root), mcp_servers=[server]), 60)
        await prompt(conn, session.session_id, acp.text_block("What is ticket 7?"))
    found, looked_up = [u for u in client.of("tool_call_update") if u.status == "completed"]
    assert "mcp__tickets__lookup_ticket" in found.content[0].content.text
    assert looked_up.content[0].content.text == "ticket 7: the parser drops trailing commas"


@pytest.mark.parametrize("scripted", [[completion("Answered by the scripted server.")]], indirect=True)
async def test_the_model_chosen_in_the_client_serves_the_next_turn(
    tmp_path: Path, agent_env: dict[str, str], scripted: ScriptedOpenAIServer
) -> None:
    root = repository(tmp_path)
    client = RecordingClient()
    async with cove_acp(client, env_for(agent_env, scripted), root) as conn:
        session = await new_session(conn, root)
        with pytest.raises(acp.RequestError, match="no model 'gpt-9' here"):
            await conn.set_config_option(config_id="model", session_id=session.session_id, value="gpt-9")
        chosen = await conn.set_config_option(config_id="model", session_id=session.session_id, value="local")
        with pytest.raises(acp.RequestError, match="To run the agent"):  # the default base model cannot serve it
            await prompt(conn, session.session_id, acp.text_block("What is in calc.py?"))
        assert scripted.requests == [], "the turn did not go to the remote model"
        await conn.set_config_option(config_id="model", session_id=session.session_id, value="remote")
        await prompt(conn, session.session_id, acp.text_block("What is in calc.py?"))
    assert session.config_options is not None
    (option,) = session.config_options
    assert (option.id, option.category, option.current_value) == ("model", "model", "remote")
    assert [o.value for o in option.options] == ["remote", "local"]
    assert chosen.config_options[0].current_value == "local"
    assert client.said() == "Answered by the scripted server."
