"""Project memory and system reminders in sessions of the real daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.daemon_client import DaemonClient, ensure_daemon
from cove.errors import DaemonError
from cove.runtime import DaemonPaths, daemon_paths


def test_cove_md_is_read_into_every_new_session(daemon: DaemonPaths, tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    (project / "COVE.md").write_text("# Conventions\nRun tests with `make check`.\n")
    with DaemonClient(daemon.socket) as client:
        session = client.request("session/create", {"project": str(project)})
        [first] = client.request("session/resume", {"session_id": session["id"]})["transcript"]
        assert first["role"] == "system" and "Run tests with `make check`." in first["content"]
        bare = client.request("session/create", {"project": str(tmp_path / "no-memory")})
        assert client.request("session/resume", {"session_id": bare["id"]})["transcript"] == []


def test_events_become_tagged_reminders_in_the_transcript(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as client:
        session = client.request("session/create", {"project": "/repo"})
        sid = session["id"]
        for _ in range(2):
            reply = client.request(
                "session/event", {"session_id": sid, "type": "tests_failed", "data": {"summary": "2 failed"}}
            )
        assert [r["level"] for r in reply["reminders"]] == ["warning"]
        assert client.notifications[-1]["params"]["type"] == "reminder"
        call = {"tool": "read_file", "arguments": '{"path": "a.py"}', "read_only": True}
        levels = []
        for _ in range(3):
            levels += [
                r["level"]
                for r in client.request("session/event", {"session_id": sid, "type": "tool_result", "data": call})[
                    "reminders"
                ]
            ]
        assert levels == ["advice"]
        transcript = client.request("session/resume", {"session_id": sid})["transcript"]
        reminders = [m for m in transcript if m["content"].startswith("<system-reminder")]
        assert len(reminders) == 3 and all(m["role"] == "user" for m in reminders)
        with pytest.raises(DaemonError, match="unknown event type"):
            client.request("session/event", {"session_id": sid, "type": "weather", "data": {}})
        with pytest.raises(DaemonError, match=r"required field missing @ \$\.summary"):
            client.request("session/event", {"session_id": sid, "type": "tests_failed", "data": {}})
        with pytest.raises(DaemonError, match="no session"):
            client.request("session/event", {"session_id": "nope", "type": "step", "data": {}})


def test_outside_events_remind_every_live_session(daemon: DaemonPaths) -> None:
    with DaemonClient(daemon.socket) as watcher, DaemonClient(daemon.socket) as ci:
        watcher.request("events/subscribe")
        sid = watcher.request("session/create", {"project": "/repo"})["id"]
        ci.request("events/publish", {"topic": "ci", "payload": {"type": "tests_failed", "summary": "main is red"}})
        reminder = next(
            message["params"]
            for message in iter(watcher.receive, None)
            if message.get("method") == "agent/event" and message["params"]["type"] == "reminder"
        )
        assert reminder["session_id"] == sid and "main is red" in reminder["text"]


def test_a_client_starts_the_daemon_when_none_runs(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_RUNTIME_DIR", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, env[name])  # the started daemon inherits these: it must not touch the user's
    paths = daemon_paths(env)
    with ensure_daemon(paths) as client:
        pid = client.request("status")["pid"]
        client.request("shutdown")
    assert pid > 0


def test_cove_memory_commands_start_the_daemon_and_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)

    def cove(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cove.cli", "memory", *args], env=env, cwd=project, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "remembered (project, convention)" in cove("add", "Use tabs in Makefiles", "--kind", "convention")
    assert "[project/convention] Use tabs in Makefiles" in cove("search", "makefiles tabs")
    with DaemonClient(daemon_paths(env).socket) as client:
        client.request("shutdown")


def test_proposed_additions_reach_cove_md_only_when_accepted(daemon: DaemonPaths, tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    (project / "COVE.md").write_text("# Conventions\n")
    with DaemonClient(daemon.socket) as client:
        keep = client.request("memory/propose", {"project": str(project), "text": "- Tests: `pytest -q`"})
        drop = client.request("memory/propose", {"project": str(project), "text": "- Always use tabs"})
        assert [p["id"] for p in client.request("memory/proposals", {"project": str(project)})] == [
            keep["id"],
            drop["id"],
        ]
        client.request("memory/decide", {"proposal_id": keep["id"], "accept": True})
        client.request("memory/decide", {"proposal_id": drop["id"], "accept": False})
        assert client.request("memory/proposals", {"project": str(project)}) == []
        with pytest.raises(DaemonError, match="no pending proposal"):
            client.request("memory/decide", {"proposal_id": keep["id"], "accept": True})
    assert (project / "COVE.md").read_text() == "# Conventions\n\n- Tests: `pytest -q`\n"
