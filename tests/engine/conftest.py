"""Fixtures of the engine tests: the tiny fill-in-the-middle model that the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fim_model import write_fim_model


@pytest.fixture(scope="session")
def fim_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny GGUF with Qwen2.5-Coder's architecture, its FIM tokens and random weights (tests/fim_model.py)."""
    return write_fim_model(tmp_path_factory.mktemp("fim_model") / "tiny-fim-qwen2.gguf")
