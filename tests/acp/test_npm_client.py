"""`cove acp` driven by the Agent Client Protocol's npm SDK (`@agentclientprotocol/sdk`, its client app) under Node,
as an editor written in TypeScript drives an agent: one whole session (tests/acp/npm_client/session.mjs) through
the real daemon, with the scripted OpenAI-compatible server deciding each step."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.acp.client import call
from tests.agent.test_loop import repository
from tests.conftest import require
from tests.scripted.openai_server import completion, scripted_openai_server

CLIENT = Path(__file__).parent / "npm_client"
FIX = call("edit_file", path="calc.py", old_text="a - b", new_text="a + b")
SCRIPT = [
    call("read_file", path="calc.py"),
    completion("add() subtracts b from a."),
    FIX,  # rejected
    completion("Left calc.py as it was."),
    FIX,  # allowed
    completion("Fixed add()."),
    call("run_command", command="echo started; sleep 60"),  # cancelled
]


def installed(npm: str) -> None:
    """The SDK as package-lock.json pins it (npm ci, once)."""
    if not (CLIENT / "node_modules" / "@agentclientprotocol" / "sdk" / "package.json").is_file():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True, capture_output=True, timeout=300)


def updates(turn: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [update for update in turn["updates"] if update["sessionUpdate"] == kind]


def test_a_whole_session_from_the_npm_sdks_client(tmp_path: Path, agent_env: dict[str, str]) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    require("" if node and npm else "node or npm missing", "install Node.js 20 or later (with npm)")
    assert node is not None and npm is not None
    installed(npm)
    root = repository(tmp_path)
    with scripted_openai_server(SCRIPT) as server:
        env = agent_env | {
            "COVE_REMOTE_BASE_URL": server.url,
            "COVE_REMOTE_MODEL": "scripted",
            "COVE_AGENT_PLAN_FIRST": "false",
            "COVE_ACP_COMMAND": json.dumps([sys.executable, "-m", "cove.cli", "acp"]),
        }
        done = subprocess.run(
            [node, str(CLIENT / "session.mjs"), str(root)], env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout)
    calc = str(root / "calc.py")
    assert report["initialize"]["agentInfo"]["name"] == "cove"
    assert report["session"]["modes"]["currentModeId"] == "auto-read"
    asked, rejected, allowed, undo, cancelled = report["turns"]
    assert [t["stopReason"] for t in report["turns"]] == ["end_turn"] * 4 + ["cancelled"]
    said = "".join(u["content"]["text"] for u in asked["updates"] if u["sessionUpdate"] == "agent_message_chunk")
    assert said == "add() subtracts b from a."
    assert [u["kind"] for u in asked["updates"] if u["sessionUpdate"] == "tool_call"] == ["read"]
    assert report["permissions"][0]["options"] == ["allow-once", "allow-always", "reject"]
    assert "unsaved in the editor" not in report["afterRejected"] and "a - b" in report["afterRejected"]
    assert calc in report["reads"], "files are read through the client's fs"
    (refused,) = updates(rejected, "tool_call_update")
    assert refused["status"] == "failed"
    (diff,) = [c for u in updates(allowed, "tool_call_update") for c in u.get("content") or []]
    assert diff["type"] == "diff" and "unsaved in the editor" in diff["oldText"], "the buffer was edited, not the disk"
    assert "return a + b  # unsaved in the editor" in report["afterAllowed"]
    assert report["writes"][calc] == report["afterAllowed"]
    assert "a - b" in report["afterUndo"]
    assert any("restored calc.py" in u["content"]["text"] for u in updates(undo, "agent_message_chunk"))
    killed = [u for u in updates(cancelled, "tool_call_update") if u.get("status") == "failed"]
    assert killed and "cancelled" in killed[0]["content"][0]["content"]["text"]
    assert [s["sessionId"] for s in report["list"]["sessions"]] == [report["session"]["sessionId"]]
    assert report["replayed"][0]["sessionUpdate"] == "user_message_chunk"
    assert report["cancelWaitMs"] < 10_000, "the cancel stopped the running command"
    assert "unknown session" in report["unknownSession"]["message"]
