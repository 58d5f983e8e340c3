"""The real `cove lsp` fed random and mutated frames, as clients this project did not write send them: every request
gets exactly one reply, nothing is shown to the user for a protocol error, and the process lives."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.wire import WireClient, lsp_process, next_id

pytestmark = pytest.mark.model

SOURCE = "import os\n\n\ndef mean(values):\n    return sum(values) / len(values)\n\n\nprint(mean([1, 2]))"
#: Commands that would start an agent run when given a real task: the fuzz sends them garbage only.
AGENT_COMMANDS = {"cove.ask", "cove.agent"}
COMMANDS = ["cove.accepted", "cove.apply", "cove.show", "cove.approvePlan", "cove.rejectPlan", "cove.cancel"]
COMMANDS += ["cove.undo", "cove.transcript", "cove.event", "cove.status", *AGENT_COMMANDS, "no.such.command"]
COMMANDS += ["cove.commitMessage", "cove.showContext"]


class Server:
    def __init__(self, process: subprocess.Popen[bytes], client: WireClient, uris: list[str]) -> None:
        self.process, self.client, self.uris = process, client, uris


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("lsp-fuzz")
    project = home / "project"
    (project / "Документы").mkdir(parents=True)
    files = [project / "my module.py", project / "Документы" / "x.py"]
    for path in files:
        path.write_text(SOURCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
    env |= {f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "STATE", "DATA")}
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    process, client = lsp_process([sys.executable, "-m", "cove.cli", "lsp", "--log-level", "error"], env)
    options = {"completion": {"max_tokens": 2, "max_block_tokens": 2, "context_chars": 200}}
    capabilities = {"textDocument": {"inlineCompletion": {}}, "window": {"workDoneProgress": True}}
    init = client.call(
        "initialize", {"processId": None, "rootUri": project.as_uri(), "capabilities": capabilities,
                       "initializationOptions": options},
    )  # fmt: skip
    assert "result" in init, init
    client.notify("initialized", {})
    uris = [path.as_uri() for path in files]  # percent-encoded, as editors send them
    yield Server(process, client, uris)
    client.send({"jsonrpc": "2.0", "method": "exit"})
    try:
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        # Completions came from the daemon (the default route), started in the test's runtime folder: stop it.
        subprocess.run([sys.executable, "-m", "cove.cli", "daemon", "stop"], env=env, capture_output=True, check=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
numbers = st.integers(-3, 40) | st.integers(0, 2**31 - 1) | st.just(2**31 - 1) | json_values


def uris(server: Server) -> st.SearchStrategy[Any]:
    raw = [uri.replace("%20", " ") for uri in server.uris]  # the same files, escaped differently
    other = ["file:///nowhere/never%20opened.py", "untitled:Untitled-1", "not a uri", "file:///%ZZ"]
    return st.sampled_from(server.uris + raw + other) | json_values


def maybe_drop(values: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """A params object, sometimes with a key missing, sometimes replaced by any JSON value."""

    def drop(params: dict[str, Any], key: str | None) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k != key}

    keys = st.none() | st.sampled_from(["textDocument", "position", "range", "context", "data", "arguments"])
    return st.builds(drop, values, keys) | json_values


def request_params(server: Server, method: str) -> st.SearchStrategy[Any]:
    document = st.fixed_dictionaries({"uri": uris(server)}) | json_values
    position = st.fixed_dictionaries({"line": numbers, "character": numbers}) | json_values
    span = st.fixed_dictionaries({"start": position, "end": position})
    if method in ("textDocument/inlineCompletion", "textDocument/completion"):
        context = st.just({"triggerKind": 1}) | json_values
        return maybe_drop(st.fixed_dictionaries({"textDocument": document, "position": position, "context": context}))
    if method == "textDocument/codeAction":
        context = st.just({"diagnostics": []}) | json_values
        return maybe_drop(st.fixed_dictionaries({"textDocument": document, "range": span, "context": context}))
    if method == "codeAction/resolve":
        # Never a resolvable action on an open document: that would start an agent run.
        data = st.fixed_dictionaries({"action": st.sampled_from(["explain", "fix", "nope"]), "uri": st.just(
            "file:///nowhere/never%20opened.py") | json_values}) | json_values  # fmt: skip
        return maybe_drop(st.fixed_dictionaries({"title": st.text(max_size=10) | json_values, "data": data}))
    if method == "workspace/executeCommand":
        return st.sampled_from(COMMANDS).flatmap(
            lambda command: maybe_drop(
                st.fixed_dictionaries({"command": st.just(command), "arguments": command_arguments(command)})
            )
        )
    return json_values


def notification_params(server: Server, method: str) -> st.SearchStrategy[Any]:
    if method == "cove/cursor":
        document = st.fixed_dictionaries({"uri": uris(server)}) | json_values
        position = st.fixed_dictionaries({"line": numbers, "character": numbers}) | json_values
        return maybe_drop(st.fixed_dictionaries({"textDocument": document, "position": position}))
    if method == "cove/yanked":
        document = st.fixed_dictionaries({"uri": uris(server)}) | json_values
        position = st.fixed_dictionaries({"line": numbers, "character": numbers}) | json_values
        span = st.fixed_dictionaries({"start": position, "end": position}) | json_values
        return maybe_drop(st.fixed_dictionaries({"textDocument": document, "range": span}))
    if method == "cove/diagnostics":
        document = st.fixed_dictionaries({"uri": uris(server)}) | json_values
        position = st.fixed_dictionaries({"line": numbers, "character": numbers}) | json_values
        diagnostic = st.fixed_dictionaries(
            {
                "range": st.fixed_dictionaries({"start": position, "end": position}) | json_values,
                "message": json_values,
            },
            optional={"severity": numbers | json_values, "source": json_values},
        )
        problems = st.lists(diagnostic, max_size=3) | json_values
        return maybe_drop(st.fixed_dictionaries({"textDocument": document, "diagnostics": problems}))
    return maybe_drop(st.fixed_dictionaries({"textDocument": json_values}))


def command_arguments(command: str) -> st.SearchStrategy[Any]:
    arguments = st.lists(json_values, max_size=3)
    if command in AGENT_COMMANDS:
        return arguments.filter(lambda args: not (args and isinstance(args[0], str) and args[0].strip()))
    return arguments | json_values


METHODS = [
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "textDocument/codeAction",
    "codeAction/resolve",
    "workspace/executeCommand",
    "textDocument/hover",
]
NOTIFICATIONS = [
    "textDocument/didChange",
    "textDocument/didClose",
    "textDocument/didSave",
    "$/cancelRequest",
    "cove/cursor",
    "cove/diagnostics",
    "cove/yanked",
]


@st.composite
def messages(draw: st.DrawFn, server: Server) -> tuple[str, Any]:
    """One thing to send: ("request", (method, params)), ("notify", (method, params)) or ("raw", bytes-or-json)."""
    kind = draw(st.sampled_from(["request", "request", "request", "notify", "raw", "no-jsonrpc"]))
    if kind == "request":
        method = draw(st.sampled_from(METHODS) | st.text(max_size=20).filter(lambda m: m not in ("shutdown", "exit")))
        return kind, (method, draw(request_params(server, method)))
    if kind == "notify":
        method = draw(st.sampled_from(NOTIFICATIONS))
        return kind, (method, draw(notification_params(server, method)))
    if kind == "no-jsonrpc":
        return kind, draw(st.sampled_from(["textDocument/completion", "shutdown"]))
    garbage = st.sampled_from([b"{", b"not json", b"\xff\xfe", b"[]", b"42", b'"x"', b"null", b"[1, 2]", b"{}"])
    return kind, draw(garbage | st.binary(max_size=30))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_request_gets_exactly_one_reply(server: Server, data: st.DataObject) -> None:
    client = server.client
    for uri in server.uris:  # every burst starts with both documents open (a fuzzed didClose may have closed them)
        item = {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}
        client.notify("textDocument/didOpen", {"textDocument": item})
    burst = data.draw(st.lists(messages(server), min_size=1, max_size=6))
    expected: list[int] = []
    for kind, payload in burst:
        if kind == "request":
            method, params = payload
            expected.append(client.request(method, params))
        elif kind == "notify":
            client.notify(*payload)
        elif kind == "no-jsonrpc":
            ident = next_id()
            expected.append(ident)
            client.send({"id": ident, "method": payload, "params": {}})
        else:
            client.send(payload)
    for ident in expected:
        reply = client.wait_reply(ident)
        assert ("result" in reply) != ("error" in reply), reply
        if "error" in reply:
            assert "traceback" not in str(reply["error"].get("data")), reply
    assert server.process.poll() is None, "the server died"
    # The server still serves: a completion at a valid place gets a result.
    probe = client.call(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": server.uris[0]},
            "position": {"line": 4, "character": 10},
            "context": {"triggerKind": 1},
        },
    )
    assert "result" in probe, probe


def test_no_reply_twice_and_no_dialog(server: Server) -> None:
    """A burst of its own (valid, cancelled, malformed and out-of-range requests), then the server's whole history
    checked at once: the fuzz's too when it ran first in the same process, this burst's alone when it did not."""
    client = server.client
    for uri in server.uris:
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                               "text": SOURCE}})  # fmt: skip
    place = {"textDocument": {"uri": server.uris[0]}, "position": {"line": 4, "character": 10},
             "context": {"triggerKind": 1}}  # fmt: skip
    sent = [client.request("textDocument/inlineCompletion", place) for _ in range(3)]
    client.notify("$/cancelRequest", {"id": sent[0]})
    sent.append(client.request("textDocument/inlineCompletion", {**place, "position": {"line": -1, "character": 0}}))
    sent.append(client.request("textDocument/inlineCompletion", {**place, "position": {"line": "4", "character": 1}}))
    sent.append(client.request("textDocument/completion", {"textDocument": {"uri": 42}}))
    sent.append(client.request("workspace/executeCommand", {"command": "cove.status", "arguments": [1, [], None]}))
    for ident in sent:
        reply = client.wait_reply(ident)
        assert ("result" in reply) != ("error" in reply), reply
    counts = client.replies()
    assert all(counts[ident] == 1 for ident in sent), {ident: counts[ident] for ident in sent}
    twice = {ident: n for ident, n in counts.items() if ident is not None and n > 1}
    assert not twice, f"requests answered more than once: {twice}"
    messages = server.client.notifications("window/showMessage") + server.client.notifications(
        "window/showMessageRequest"
    )
    # `cove.transcript` shows the transcript by design (as a message where the client cannot show documents): that is
    # the answer the command asks for, not a dialog about what the client sent.
    dialogs = [m for m in messages if not str(m.get("params", {}).get("message", "")).startswith("Cove transcript\n")]
    assert not dialogs, dialogs
    assert server.process.poll() is None
