"""Checkpoints in a real shadow git repository: a command's deletions, rewrites and new files are undone exactly,
the workspace's own git repository is never touched, ignored and large files are left alone (and said), and the
checkpoints outlive the daemon (`cove checkpoints`, `cove undo` after a restart)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cove.agent import checkpoints as checkpoints_module
from cove.agent.checkpoints import Checkpoints
from cove.errors import InputError
from tests.agent.daemon_runs import agent_daemon, run_session
from tests.agent.test_loop import repository
from tests.scripted.openai_server import completion, scripted_openai_server


def git(root: Path, *args: str) -> str:
    identity = ["-c", "user.name=T", "-c", "user.email=t@t.invalid"]
    return subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True, text=True).stdout


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_a_restore_brings_back_deleted_and_rewritten_files_and_removes_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "core.py").write_text("def f():\n    return 1\n")
    (root / "data.bin").write_bytes(bytes(range(256)))
    (root / ".gitignore").write_text("*.log\n")
    (root / "run.log").write_text("before")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "start")
    head, branch = git(root, "rev-parse", "HEAD"), git(root, "branch", "--show-current").strip()
    monkeypatch.setattr(checkpoints_module, "MAX_FILE_BYTES", 1000)
    (root / "big.bin").write_bytes(b"x" * 2000)
    before = files(root)
    checkpoints = Checkpoints(root, tmp_path / "data")
    first = checkpoints.snapshot("s", 1, "run_command")
    assert first is not None and first.left_out == ("big.bin",)
    assert "A pkg/core.py" in first.changed and not any("run.log" in c for c in first.changed)
    assert checkpoints.snapshot("s", 2, "run_command") is None  # nothing changed: the last one stands
    # What a command can do: delete, rewrite, create, change the ignored and the large files.
    (root / "pkg" / "core.py").unlink()
    (root / "data.bin").write_bytes(b"rewritten")
    (root / "new").mkdir()
    (root / "new" / "made.py").write_text("x = 1\n")
    (root / "run.log").write_text("after")
    (root / "big.bin").write_bytes(b"y" * 2000)
    target, present = checkpoints.restore(1)
    assert target.number == 1 and present is not None and present.number == 2
    after = files(root)
    assert {k: v for k, v in after.items() if k not in ("run.log", "big.bin")} == {
        k: v for k, v in before.items() if k not in ("run.log", "big.bin")
    }
    assert after["run.log"] == b"after" and after["big.bin"] == b"y" * 2000  # ignored and large: left as they are
    assert git(root, "rev-parse", "HEAD") == head  # the workspace's own repository: untouched
    assert git(root, "for-each-ref", "--format=%(refname)").split() == [f"refs/heads/{branch}"]
    checkpoints.restore(2)  # the restore is itself undone
    assert (root / "new" / "made.py").read_text() == "x = 1\n" and not (root / "pkg" / "core.py").exists()
    with pytest.raises(InputError, match="no checkpoint 9"):
        checkpoints.restore(9)


def test_undo_again_goes_one_step_further_back(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    checkpoints = Checkpoints(root, tmp_path / "data")
    with pytest.raises(InputError, match="not changed anything"):
        checkpoints.undo()
    for step, text in enumerate(["one", "two", "three"], start=1):
        checkpoints.snapshot("s", step, "write_file")
        (root / "f.txt").write_text(text)
    assert checkpoints.undo()[0].step == 3 and (root / "f.txt").read_text() == "two"
    assert checkpoints.undo()[0].step == 2 and (root / "f.txt").read_text() == "one"
    assert checkpoints.undo()[0].step == 1 and not (root / "f.txt").exists()
    with pytest.raises(InputError, match="nothing older to undo"):
        checkpoints.undo()


def cove(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cove.cli", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def test_a_commands_changes_are_undone_after_a_daemon_restart(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    before = files(root)
    command = "rm calc.py && printf 'broken' > test_calc.py && mkdir -p gen && echo 1 > gen/out.txt"
    script = [completion("", [("run_command", json.dumps({"command": command}))]), completion("Done.")]
    env = dict(agent_env, XDG_RUNTIME_DIR=str(tmp_path / "run"))
    with scripted_openai_server(script) as server, agent_daemon(env, tmp_path, server.url) as client:
        run_session(client, root, "Clean up", lambda event: (True, ""), mode="full-auto", plan_first=False)
    assert not (root / "calc.py").exists() and (root / "gen" / "out.txt").exists()
    try:
        listed = cove(root, env, "checkpoints")  # a new daemon: the checkpoints were kept on disk
        assert listed.returncode == 0, listed.stderr
        assert "  1  " in listed.stdout and "before step 1 (run_command)" in listed.stdout, listed.stdout
        undone = cove(root, env, "undo")
        assert undone.returncode == 0, undone.stderr
        assert files(root) == before
        assert "cove undo --to 2" in undone.stdout  # the state undone is a checkpoint too
        assert cove(root, env, "undo", "--to", "2").returncode == 0 and not (root / "calc.py").exists()
    finally:
        cove(root, env, "daemon", "stop")
