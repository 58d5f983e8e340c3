"""The daemon's `complete/*` methods as a client Cove did not write would use them: bad params get a clear error and
lose nothing, a running generation is cancelled by `complete/cancel` (one reply each), a client that goes away has
its generation stopped, and the daemon's `status` says what its model did."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from typing import Any

import pytest

from cove.daemon_client import DaemonClient
from cove.errors import DaemonError
from cove.inference.completion.daemon_completions import DaemonCompletions
from cove.inference.completion.prompt_window import build_window
from cove.protocol.jobs import CompletionMode, GenerationJob, PromptWindow, StopRule
from cove.protocol.params import CompleteCancel, CompleteGenerate, CompleteLoad, StatusParams
from cove.runtime import DaemonPaths
from tests.conftest import ARGPARSE, find_line

pytestmark = pytest.mark.model


def job(max_new: int = 24, budget_s: float = 20.0, mode: CompletionMode = CompletionMode.LINE) -> GenerationJob:
    text = ARGPARSE.read_text()
    line, column = find_line(text, "seen_non_default_actions.add(action)")
    offset = sum(len(x) for x in text.splitlines(keepends=True)[:line]) + column + len("seen_non_default_actions.")
    window = build_window(text, offset, None, 3000, 600)
    rule = StopRule(mode, window.line_prefix, window.line_suffix, 1000)
    return GenerationJob(ARGPARSE.as_uri(), window, mode, rule, max_new, budget_s)


def replies(client: DaemonClient, count: int) -> dict[int, dict[str, Any]]:
    got: dict[int, dict[str, Any]] = {}
    while len(got) < count:
        message = client.receive()
        assert message["id"] not in got, f"two replies to request {message['id']}"
        got[message["id"]] = message
    return got


def test_a_completion_from_the_daemon_and_its_status(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        assert client.call(StatusParams())["completions"] == {"loaded": False, "loads": 0, "served": 0, "models": []}
        generated = client.call(CompleteGenerate(job()))
        assert generated["text"] == "add(action)" and generated["stop"] == "rule", generated
        again = client.call(CompleteGenerate(job()))
        assert again["reused_tokens"] >= again["prompt_tokens"] - 3, "the document's KV state was kept"
        completions = client.call(StatusParams())["completions"]
    assert completions["loaded"] and completions["loads"] == 1 and completions["served"] == 2, completions
    assert completions["model"].startswith("the local model (gemma3")
    (model,) = completions["models"]  # a request that names no model is served the daemon's own
    assert (model["path"], model["loaded"], model["loads"]) == ("the default model", True, 1), model
    assert 241 < model["memory_mib"] < completions["budget_mib"] == 2048, completions  # the weights and the cache


def test_text_for_a_local_action_ends_at_its_stop_string_through_the_daemon(daemon: DaemonPaths) -> None:
    """A local action's request (TEXT mode, its stop strings) crosses the socket whole."""
    prefix = 'def mean(values):\n    """Return the'
    window = PromptWindow(prefix, "", 0, '    """Return the', "")
    rule = StopRule(CompletionMode.TEXT, '    """Return the', "", 0, ('"""', "\n"))
    text_job = GenerationJob("util.py#docstring", window, CompletionMode.TEXT, rule, 24, 20.0)
    with DaemonClient(daemon.socket) as client:
        generated = client.call(CompleteGenerate(text_job))
    assert generated["text"] and "\n" not in generated["text"] and '"""' not in generated["text"], generated
    assert generated["stop"] == "rule", generated


def test_complete_load_loads_the_model_once(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        first = client.call(CompleteLoad())
        assert first["loaded_now"] and first["model"].startswith("the local model (gemma3"), first
        assert client.call(CompleteLoad())["loaded_now"] is False
        assert client.call(StatusParams())["completions"]["loads"] == 1


def test_bad_params_get_a_clear_error_and_the_daemon_goes_on(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        wire = CompleteGenerate(job()).to_wire()
        wire["job"]["max_new"] = "24"
        with pytest.raises(DaemonError, match=r"complete/generate: .*expected int @ \$\.job\.max_new"):
            client.request("complete/generate", wire)
        wire["job"] = {**CompleteGenerate(job()).to_wire()["job"], "mode": "paragraph"}
        with pytest.raises(DaemonError, match=r"\$\.job\.mode"):
            client.request("complete/generate", wire)
        with pytest.raises(DaemonError, match=r"complete/cancel: .*\$\.request_id"):
            client.request("complete/cancel", {"request_id": "7"})
        assert client.call(CompleteCancel(12345)) == {"cancelled": False}, "nothing of that id runs: no harm"
        assert client.call(CompleteGenerate(job()))["text"] == "add(action)"


def test_complete_cancel_stops_a_running_generation(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        client.call(CompleteGenerate(job()))  # loaded
        # Another document: a cold prefill of the whole window, stopped between two batches.
        cold = dataclasses.replace(job(max_new=400, budget_s=60.0), document="file:///elsewhere/other.py")
        asked = client.send_request(CompleteGenerate(cold))
        time.sleep(0.1)
        started = time.monotonic()
        cancel = client.send_request(CompleteCancel(asked))
        got = replies(client, 2)
        seconds = time.monotonic() - started
        assert got[asked]["error"]["code"] == -32800, got[asked]
        assert got[cancel]["result"] == {"cancelled": True}
        # Between two batches of the prefill (one batch: 0.5 s on a fast machine, 1.6 s seen on a slow one), not at
        # the end of the job (a whole window and 400 tokens: over 10 s).
        assert seconds < 4.0, f"stopped between two batches, not at the end ({seconds:.2f} s)"


def test_a_client_that_goes_away_stops_its_generation(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        client.call(CompleteGenerate(job()))
    gone = DaemonClient(daemon.socket)
    cold = dataclasses.replace(job(max_new=400, budget_s=60.0), document="file:///elsewhere/other.py")
    gone.send_request(CompleteGenerate(cold))
    time.sleep(0.1)
    gone.close()
    started = time.monotonic()
    with DaemonClient(daemon.socket) as client:
        assert client.call(CompleteGenerate(job()))["text"] == "add(action)"
    # A batch of the abandoned prefill at most, then this job (the whole abandoned job would take over 10 s).
    assert time.monotonic() - started < 4.0, "the abandoned prefill held the model"


def test_wire_form_is_plain_json() -> None:
    wire = CompleteGenerate(job()).to_wire()
    assert json.loads(json.dumps(wire)) == wire
    assert wire["job"]["mode"] == "line" and wire["job"]["rule"]["mode"] == "line"


def test_a_generation_sends_its_text_so_far_before_the_reply(daemon: DaemonPaths) -> None:
    """`complete/text` carries the text as it is generated, so a language server can answer a keystroke that types
    on from it; each one extends the last, and the reply's text is where they lead."""
    text = ARGPARSE.read_text()
    offset = text.index("\n", text.index("def _get_values(self, action, arg_strings):")) + 1
    window = build_window(text, offset, None, 3000, 600)
    rule = StopRule(CompletionMode.BLOCK, window.line_prefix, window.line_suffix, 4)
    block = GenerationJob(ARGPARSE.as_uri(), window, CompletionMode.BLOCK, rule, 24, 20.0)
    backend = DaemonCompletions(daemon)
    seen: list[str] = []
    try:
        generated = backend.generate(block, lambda: False, seen.append)
    finally:
        backend.close()
    assert len(seen) >= 2, f"the text came whole, not as it was generated: {seen}"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen)), seen
    assert generated.text and generated.text.startswith(seen[0].rstrip()), (seen, generated)
