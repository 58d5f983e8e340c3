"""Tools of a real MCP server (started over stdio by the official SDK), discovered and called like Cove's own."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from cove.agent.file_tools import ToolError
from cove.agent.mcp_tools import McpTools, parse_servers
from cove.agent.runner import AgentSession
from cove.agent.store import MemoryStore
from cove.config import McpConfig, load_config
from cove.errors import ConfigError

SERVER = Path(__file__).parent.parent / "data" / "mcp_tickets_server.py"


def test_mcp_tools_are_found_through_search_tools_and_called(tmp_path: Path) -> None:
    config = McpConfig(servers=(f"tickets = {sys.executable} {SERVER}", "broken = /nonexistent/server --flag"))
    store = MemoryStore(tmp_path / "memory.db")
    session = AgentSession(store, store.create_session(str(tmp_path), "t").id, tmp_path)
    mcp = McpTools(config, tmp_path).start()
    try:
        assert len(mcp.failures) == 1 and "'broken'" in mcp.failures[0]  # reported; the other server works
        registry = session.registry(mcp)
        prompt = {schema["function"]["name"] for schema in registry.prompt_schemas()}
        assert not any(name.startswith("mcp__") for name in prompt)  # lazily discovered, like non-core tools
        found = registry.search_tools("look up a ticket in the issue tracker")
        assert found.startswith("mcp__tickets__lookup_ticket:")
        assert (
            registry.call("mcp__tickets__lookup_ticket", {"number": 7}) == "ticket 7: the parser drops trailing commas"
        )
        assert registry.specs["mcp__tickets__lookup_ticket"].read_only  # from the server's readOnlyHint
        assert not registry.specs["mcp__tickets__close_ticket"].read_only  # needs approval like any write
        with pytest.raises(ToolError, match="no ticket 8"):
            registry.call("mcp__tickets__lookup_ticket", {"number": 8})
        with pytest.raises(ToolError, match="expected integer"):
            registry.call("mcp__tickets__lookup_ticket", {"number": "7"})
    finally:
        mcp.close()
        store.close()


@pytest.mark.parametrize("entry", ["no command", "bad name! = cmd", "x = 'unclosed"])
def test_malformed_server_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"mcp\.servers"):
        parse_servers(McpConfig(servers=(entry,)))


def test_mcp_timeout_s_from_a_project_config_bounds_each_call(tmp_path: Path) -> None:
    """`[mcp] timeout_s`: a tool slower than it fails the call with a clear error, soon after the timeout; a timeout
    longer than the tool lets the same call answer."""
    (tmp_path / ".cove").mkdir()
    answers: dict[int, str] = {}
    waited: dict[int, float] = {}
    for timeout in (1, 10):
        (tmp_path / ".cove" / "config.toml").write_text(
            f"[mcp]\nservers = [{f'tickets = {sys.executable} {SERVER}'!r}]\ntimeout_s = {timeout}\n"
        )
        config = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")}).config.mcp
        mcp = McpTools(config, tmp_path).start()
        try:
            assert not mcp.failures, mcp.failures
            started = time.monotonic()
            try:
                answers[timeout] = mcp.call("mcp__tickets__export_tickets", {"seconds": 3})
            except ToolError as err:
                answers[timeout] = str(err)
            waited[timeout] = time.monotonic() - started
        finally:
            mcp.close()
    assert answers[1] == "mcp__tickets__export_tickets did not answer within 1 s", answers
    assert waited[1] < 2.5, "the call was given up at the timeout, not when the tool finished"
    assert answers[10] == "exported 2 tickets"
