"""`cove acp` from outside, as a client nobody here wrote might drive it: garbage lines, JSON that is not a message,
unknown methods, wrong params, prompts for sessions that do not exist, cancels of nothing. Every request gets exactly
one reply, every line on stdout is a JSON-RPC message, and `cove acp` is alive and answers at the end."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

BAD: list[Any] = [
    "garbage{",
    "\x00\x01\x02",
    [1, 2],
    "a string",
    42,
    None,
    {"id": 900},
    {"jsonrpc": "2.0", "id": {"an": "object"}, "method": "initialize"},
    {"jsonrpc": "2.0", "id": 901, "method": 7},
    {"jsonrpc": "2.0", "id": 902, "method": "session/new", "params": "not an object"},
    {"jsonrpc": "2.0", "id": 903, "method": "no/such/method", "params": {}},
    {"jsonrpc": "2.0", "id": 904, "method": "session/new", "params": {"cwd": 5}},
    {"jsonrpc": "2.0", "id": 905, "method": "session/new", "params": {"cwd": "relative/path", "mcpServers": []}},
    {"jsonrpc": "2.0", "id": 906, "method": "session/new", "params": {"cwd": "/no/such/folder", "mcpServers": []}},
    {"jsonrpc": "2.0", "id": 907, "method": "session/prompt", "params": {"sessionId": "nope", "prompt": []}},
    {
        "jsonrpc": "2.0",
        "id": 908,
        "method": "session/prompt",
        "params": {"sessionId": "nope", "prompt": [{"type": "text", "text": "hi"}]},
    },
    {"jsonrpc": "2.0", "id": 909, "method": "session/set_mode", "params": {"sessionId": "nope", "modeId": "ask"}},
    {"jsonrpc": "2.0", "id": 910, "method": "session/load", "params": {"sessionId": 3}},
    {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "nope"}},
    {"jsonrpc": "2.0", "method": "session/cancel", "params": [1]},
    {"jsonrpc": "2.0", "id": 911, "method": "authenticate", "params": {"methodId": "x"}},
]


def lines(seed: int) -> list[bytes]:
    """The bad messages, and random bytes between them, in an order of their own."""
    rng = random.Random(seed)
    out = [m.encode() if isinstance(m, str) else json.dumps(m).encode() for m in BAD]
    out += [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 60))).replace(b"\n", b" ") for _ in range(20)]
    rng.shuffle(out)
    return out


def test_no_client_input_kills_cove_acp_and_every_request_gets_one_reply(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    hello = {"jsonrpc": "2.0", "id": 999, "method": "initialize", "params": {"protocolVersion": 1}}
    sent = [*lines(seed=7), json.dumps(hello).encode()]
    process = subprocess.run(
        [sys.executable, "-m", "cove.cli", "acp"],
        input=b"\n".join(sent) + b"\n",
        capture_output=True,
        env=agent_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr.decode()[-2000:]
    replies = [json.loads(line) for line in process.stdout.decode().splitlines()]  # nothing but protocol on stdout
    assert replies and all(reply["jsonrpc"] == "2.0" for reply in replies)
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for reply in replies:
        by_id.setdefault(reply.get("id"), []).append(reply)
    asked = [m["id"] for m in BAD if isinstance(m, dict) and isinstance(m.get("id"), int) and "method" in m]
    for ident in [*asked, 900]:
        assert len(by_id.get(ident, [])) == 1, (ident, by_id.get(ident))
        assert "error" in by_id[ident][0], by_id[ident]
    assert by_id[903][0]["error"]["code"] == -32601
    assert "unknown session 'nope'" in by_id[908][0]["error"]["message"]
    assert "absolute path of a folder" in by_id[905][0]["error"]["message"]
    (answer,) = by_id[999]
    assert answer["result"]["agentInfo"]["name"] == "cove", "still alive and answering after all of it"
    unanswerable = [r for r in by_id.get(None, []) if r["error"]["code"] in (-32700, -32600)]
    assert len(unanswerable) >= 20, "each line that is no message is answered with a parse or request error"
