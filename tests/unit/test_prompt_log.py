"""The prompt a completion is built from, for a person: `GenerationJob.describe`, logged at debug level by the
engine (`cove lsp --log-level debug`) and printed by `cove complete --show-prompt`."""

from __future__ import annotations

import logging

import pytest

from cove.config import CompletionConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest


def engine() -> CompletionEngine:
    def no_model() -> object:
        raise AssertionError("describing a prompt loads no model")

    return CompletionEngine(no_model, CompletionConfig())  # type: ignore[arg-type]


def test_the_prompt_is_logged_at_debug_level_only(caplog: pytest.LogCaptureFixture) -> None:
    text = "def area(r):\n    return 3.14 * r\n\nprint(area(2))\n"
    request = CompletionRequest("file:///w/shapes.py", text, text.index(" * r"), context=lambda _: "# units.py\n")
    with caplog.at_level(logging.INFO, logger="cove.inference.completion.engine"):
        engine().prompt(request)
    assert not caplog.records
    with caplog.at_level(logging.DEBUG, logger="cove.inference.completion.engine"):
        described = engine().prompt(request).describe()
    [record] = caplog.records
    assert record.getMessage() == f"prompt\n{described}"
    assert "--- context (11 chars)\n# units.py\n--- prefix" in described
    assert "    return 3.14<CURSOR>\n--- suffix" in described and " * r\n\nprint(area(2))" in described
