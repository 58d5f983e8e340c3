"""The `cove` command as a user runs it: real processes, real files, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cove.agent.sandbox import unavailable
from tests.conftest import ARGPARSE, find_line


def cove(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cove.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("spec", "message", "code"),
    [
        ("/no/such/file.py:3", "/no/such/file.py: no such file", 65),
        (f"{ARGPARSE}:999999", "line 999999 is out of range (the file has", 65),
        (f"{ARGPARSE}:1:500", "column 500 is out of range", 65),
        (f"{ARGPARSE}", "expected FILE:LINE[:COL]", 65),
        (f"{ARGPARSE}:0", "lines and columns count from 1", 65),
        ("/:3", "is a directory", 65),
    ],
)
def test_complete_bad_input_is_one_line_and_non_zero(
    spec: str, message: str, code: int, clean_env: dict[str, str]
) -> None:
    done = cove("complete", spec, env=clean_env)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_broken_config_is_one_line_naming_file_and_key(tmp_path: Path, clean_env: dict[str, str]) -> None:
    project = tmp_path / "p"
    (project / ".cove").mkdir(parents=True)
    (project / ".cove" / "config.toml").write_text("[model]\nn_ctx = 'big'\n")
    done = cove("complete", f"{ARGPARSE}:10", env=clean_env, cwd=project)
    # The config is read from the project of the file, not the cwd: argparse has no project, so this succeeds...
    assert "Traceback" not in done.stderr
    source = project / "code.py"
    source.write_text("def add(a, b):\n    return a\n")
    done = cove("complete", f"{source}:2", env=clean_env)
    assert done.returncode == 78
    assert f"{project / '.cove' / 'config.toml'}: 'model.n_ctx' must be an integer, got 'big'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.model
def test_complete_prints_the_models_suggestion(clean_env: dict[str, str]) -> None:
    line, column = find_line(ARGPARSE.read_text(), "seen_non_default_actions.add(action)")
    done = cove("complete", f"{ARGPARSE}:{line + 1}:{column + 1 + len('seen_non_def')}", env=clean_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ault_actions")
    assert "prompt tokens" in done.stderr


@pytest.mark.model
def test_show_prompt_prints_the_workspace_context_and_the_window(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """`--show-prompt`: what the model is given, the package's imported definition included, before the answer;
    without it nothing of the prompt is printed."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "shapes").mkdir()
    (project / "shapes" / "__init__.py").write_text("")
    (project / "shapes" / "units.py").write_text('def to_metres(feet: float) -> float:\n    """Feet to metres."""\n')
    source = project / "shapes" / "area.py"
    source.write_text("from .units import to_metres\n\n\ndef area(width, height):\n    return to_")
    shown = cove("complete", f"{source}:5", "--show-prompt", env=clean_env)
    plain = cove("complete", f"{source}:5", env=clean_env)
    assert shown.returncode == 0, shown.stderr
    prompt = shown.stderr[shown.stderr.index("--- context") : shown.stderr.index("--- end of prompt")]
    assert "# shapes/units.py\ndef to_metres(feet: float) -> float:" in prompt
    assert "def area(width, height):\n    return to_<CURSOR>" in prompt
    assert "--- context" not in plain.stderr and plain.stdout == shown.stdout  # the same answer either way


@pytest.mark.model
def test_model_and_doctor_report_a_healthy_install(clean_env: dict[str, str]) -> None:
    model = cove("model", env=clean_env)
    assert model.returncode == 0, model.stderr
    assert Path(model.stdout.strip()).is_file()
    doctor = cove("doctor", env=clean_env)
    assert doctor.returncode == 0, doctor.stdout
    assert "FAIL" not in doctor.stdout
    assert "gemma3" in doctor.stdout and "ok  offline    nothing leaves this machine" in doctor.stdout
    assert "MB, model.path set by the default)" in doctor.stdout, doctor.stdout
    remote = {"COVE_REMOTE_BASE_URL": "https://models.example.com/v1", "COVE_EVENTS_MQTT_HOST": "broker.example.com"}
    reaching = cove("doctor", env=clean_env | remote)
    assert (
        "note offline    reaches beyond this machine: execute, plan, critique to https://models.example.com/v1 "
        "(refused: [remote] offline = true); events to the MQTT broker broker.example.com:1883" in reaching.stdout
    ), reaching.stdout
    # The ACP face: the command editors run, and why its prompts are refused with only the base model.
    assert "off  acp        `" in doctor.stdout and " acp` serves the Agent Client Protocol v1" in doctor.stdout
    assert "its prompts are refused until" in doctor.stdout
    assert "ok  acp        `" in reaching.stdout, "a remote chat model serves the agent"
    # The sandbox: how commands are confined here, or why they cannot be and what then happens.
    if unavailable():  # one outcome per machine: this one's
        assert "every agent command will be asked for" in doctor.stdout, doctor.stdout
    else:
        assert "ok  sandbox    bubblewrap" in doctor.stdout, doctor.stdout
    without = cove("doctor", env=dict(clean_env, PATH=str(Path(sys.executable).parent), COVE_SANDBOX_REQUIRED="false"))
    assert "warn sandbox    bubblewrap is not installed" in without.stdout and "run unconfined" in without.stdout


def test_doctor_fails_on_a_model_path_that_is_missing(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = dict(clean_env, COVE_MODEL_PATH=str(tmp_path / "nothing.gguf"))
    doctor = cove("doctor", env=env)
    assert doctor.returncode == 1
    assert "FAIL model" in doctor.stdout and "nothing.gguf" in doctor.stdout


def test_commit_message_for_the_staged_changes_printed_or_committed_after_review(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The real model and a real repository: nothing staged is an error; a staged change gets one subject line; with
    `--commit`, git's editor (here one that keeps the text as it is) is opened on it before it is committed."""
    root = tmp_path / "repo"
    root.mkdir()
    env = dict(clean_env, GIT_AUTHOR_NAME="T", GIT_AUTHOR_EMAIL="t@t.invalid", GIT_COMMITTER_NAME="T")
    env |= {"GIT_COMMITTER_EMAIL": "t@t.invalid", "GIT_EDITOR": "cat"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (root / "util.py").write_text("def mean(values):\n    return sum(values) / len(values)\n")
    git("add", "util.py")
    git("commit", "-qm", "Add mean")
    nothing = cove("commit-message", "-C", str(root), env=env)
    assert nothing.returncode == 65 and "nothing is staged" in nothing.stderr
    with (root / "util.py").open("a") as file:
        file.write("\n\ndef total(values):\n    return sum(values)\n")
    git("add", "util.py")
    printed = cove("commit-message", "-C", str(root), env=env)
    assert printed.returncode == 0, printed.stderr
    subject = printed.stdout.strip()
    assert subject and "\n" not in subject and len(subject) <= 72
    committed = cove("commit-message", "--commit", "-C", str(root), env=env)
    assert committed.returncode == 0, committed.stderr
    assert subject in committed.stdout  # git's editor was shown the message first
    assert git("log", "-1", "--format=%s").strip() == subject


def test_index_builds_in_the_daemon_searches_and_shows_in_doctor(tmp_path: Path, agent_env: dict[str, str]) -> None:
    """`cove index` builds the project's index in the daemon (a bar on a terminal, a summary line), `--search` ranks
    its chunks, and `cove doctor` reads it from its database (the daemon need not run)."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "app.py").write_text("def render_invoice(total: float) -> str:\n    return f'{total:.2f}'\n")
    (project / "web.ts").write_text("export function renderReceipt(id: string): string {\n  return id;\n}\n")
    before = cove("doctor", env=agent_env, cwd=project)
    assert "index      " in before.stdout and "not indexed yet (`cove index` builds it" in before.stdout
    built = cove("index", "-C", str(project), env=agent_env)
    assert built.returncode == 0, built.stderr
    assert f"{project}: 2 files, 2 chunks" in built.stdout and "last update 20" in built.stdout
    found = cove("index", "--search", "renderReceipt(order.id)", env=agent_env, cwd=project)
    assert found.stdout.splitlines() == ["web.ts:1-3: function renderReceipt"]
    cove("daemon", "stop", env=agent_env)
    after = cove("doctor", env=agent_env, cwd=project)
    assert f"index      {project}: 2 files, 2 chunks" in after.stdout, after.stdout


@pytest.mark.model
def test_show_prompt_has_the_projects_index_once_it_is_built(tmp_path: Path, agent_env: dict[str, str]) -> None:
    """`cove complete` asks the daemon's index as the editor's server does: before `cove index`, only what the files
    give; after it, the window's neighbour in another file (BM25) is in the prompt too."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "retry.py").write_text(
        "def backoff_delays(base: float, attempts: int) -> list[float]:\n"
        "    return [base * 2**n for n in range(attempts)]\n"
    )
    source = project / "client.py"
    source.write_text("import time\n\n\ndef fetch(session, url):\n    for delay in backoff_delays(0.5, 4):\n        ti")
    env = dict(agent_env, COVE_INDEX_ENABLED="true", COVE_COMPLETION_MAX_TOKENS="2")
    before = cove("complete", f"{source}:6", "--show-prompt", env=env)
    assert before.returncode == 0, before.stderr
    assert "# retry.py" not in before.stderr
    assert cove("index", "-C", str(project), env=env).returncode == 0
    after = cove("complete", f"{source}:6", "--show-prompt", env=env)
    prompt = after.stderr[after.stderr.index("--- context") : after.stderr.index("--- end of prompt")]
    assert "# retry.py\ndef backoff_delays(base: float, attempts: int) -> list[float]:" in prompt, prompt
    cove("daemon", "stop", env=env)
