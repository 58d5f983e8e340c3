"""The local agent's prompt holds as much of the conversation as `[model] n_ctx` has room for beside the reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.file_tools import FileTools
from cove.agent.safety import Workspace
from cove.agent.tool_registry import ToolRegistry
from cove.config import ModelConfig
from cove.inference.chat.local_chat import LocalChat
from cove.inference.model.local_model import LocalModel
from tests.conftest import ARGPARSE

pytestmark = pytest.mark.model

TASK = "Task: find where argparse formats the usage line."
REPLY_TOKENS = 256


@pytest.mark.parametrize("n_ctx", [2048, 32768])
def test_the_conversation_kept_is_what_the_context_holds(model_path: Path, tmp_path: Path, n_ctx: int) -> None:
    tools = ToolRegistry(FileTools(Workspace.at(tmp_path))).prompt_schemas()
    source = ARGPARSE.read_text()
    # A task and two long tool results (~20K tokens): far more than 6,000 characters, less than 32K tokens.
    messages = [
        {"role": "user", "content": TASK},
        {"role": "tool", "content": source[:40_000]},
        {"role": "tool", "content": source[40_000:80_000]},
    ]
    model = LocalModel(model_path, ModelConfig(n_ctx=n_ctx, kv_type="q8_0", swa_full=False))
    try:
        prompt = LocalChat(model, REPLY_TOKENS).prompt(messages, tools)
        used = len(model.tokenize(prompt, bos=True))
    finally:
        model.close()
    assert used + REPLY_TOKENS <= n_ctx, "the prompt and the reply fit the context"
    assert prompt.endswith("ASSISTANT: ") and source[79_000:80_000] in prompt, "the most recent turns are kept"
    if n_ctx == 2048:
        assert used > n_ctx - REPLY_TOKENS - 64, "a full context is filled, not cut to a fixed size"
        assert TASK not in prompt
    else:
        assert all(m["content"] in prompt for m in messages), "at 32K the whole conversation is kept"
