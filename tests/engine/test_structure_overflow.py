"""`[model] overflow = "structure"` on the real model: a prompt longer than the context is cut by the code's
structure before it is evaluated (the spans left out cost no prefill), and a generation that outgrows the context
loses its lowest-ranked spans from the KV cache, the gaps closed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import pytest

from cove.config import CompletionConfig, ModelConfig
from cove.errors import ModelError
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.model.local_model import SEQ, LocalModel
from tests.conftest import ARGPARSE

pytestmark = pytest.mark.model

#: The start of argparse.py: its docstring, imports and constants, then classes whose methods run far from its end.
HEAD = ARGPARSE.read_text()[:9000].rsplit("\n", 1)[0] + "\n"


def greedy_run(model: LocalModel, tokens: Sequence[int], steps: int, language: str | None = None) -> list[int]:
    model.prefill(tokens, language=language)
    out = []
    for _ in range(steps):
        token = model.greedy()
        out.append(token)
        model.decode([token])
    return out


def counting_evaluations(model: LocalModel) -> list[int]:
    """A list that receives the size of every batch the model evaluates from now on."""
    sizes: list[int] = []
    decode = model.decode

    def counted(tokens: Sequence[int], all_logits: bool = False, logits: bool = True) -> None:
        sizes.append(len(tokens))
        decode(tokens, all_logits, logits)

    model.decode = counted  # type: ignore[method-assign]
    return sizes


def test_a_long_prompt_keeps_what_the_structure_needs_and_evaluates_only_that(model_path: Path) -> None:
    model = LocalModel(model_path, ModelConfig(n_ctx=1024, n_batch=128, overflow="structure"))
    prompt = [model.bos, *model.tokenize(HEAD)]
    assert len(prompt) > 2000
    evaluated = counting_evaluations(model)
    generated = greedy_run(model, prompt, 8, "python")
    held = model.tokens[: -len(generated)]
    assert len(held) == 768  # three quarters of the context: the next keystrokes fit without another cut
    assert sum(evaluated) == len(held) + len(generated), "the spans left out are never evaluated"
    assert held[:4] == prompt[:4] and held[-576:] == prompt[-576:]  # the sinks and the recent window
    text = model.detokenize(held)
    for kept in (
        "_UNRECOGNIZED_ARGS_ATTR = '_unrecognized_args'",
        "def _copy_items(items):",
        "    def _indent(self):\n",
    ):
        assert kept in text  # module-level names and the signatures of functions far from the end
    for dropped in ("Command-line parsing library", "# Utility functions and classes", "self._level += 1"):
        assert dropped not in text  # the module's docstring, a comment, a distant function's body
    # What the model says is what it says after a prompt of exactly the tokens kept.
    fresh = LocalModel(model_path, ModelConfig(n_ctx=1024, n_batch=128, overflow="error"))
    assert greedy_run(fresh, held, 8) == generated
    fresh.close()
    # The next keystroke's prompt leaves out the same spans: everything held is reused.
    typed = [*prompt, *model.tokenize("        if")]
    assert model.prefill(typed, language="python") >= len(held)
    assert model.tokens[: len(held)] == held
    model.close()


def test_streaming_and_error_treat_the_same_prompt_otherwise(model_path: Path) -> None:
    streaming = LocalModel(model_path, ModelConfig(n_ctx=1024, n_batch=128))
    prompt = [streaming.bos, *streaming.tokenize(HEAD)]
    evaluated = counting_evaluations(streaming)
    streaming.prefill(prompt)
    assert sum(evaluated) == len(prompt)  # every token is evaluated; the context keeps the latest
    assert "def _copy_items(items):" not in streaming.detokenize(streaming.tokens)
    streaming.close()
    refusing = LocalModel(model_path, ModelConfig(n_ctx=1024, n_batch=128, overflow="error"))
    with pytest.raises(ModelError, match="does not fit the context of 1024"):
        refusing.prefill(prompt)
    refusing.close()


@pytest.mark.parametrize(("kv_type", "swa_full"), [("f16", True), ("f16", False), ("q8_0", False)])
def test_a_generation_past_the_context_drops_the_lowest_ranked_spans(
    model_path: Path, kv_type: str, swa_full: bool
) -> None:
    config = ModelConfig(n_ctx=512, n_batch=128, overflow="structure", kv_type=kv_type, swa_full=swa_full)  # type: ignore[arg-type]
    model = LocalModel(model_path, config)
    tokens = model.tokenize(HEAD[HEAD.index("__version__") :])
    end = max(i for i in range(430) if "\n" in model.detokenize(tokens[i : i + 1]))
    prompt = [model.bos, *tokens[: end + 1]]
    generated = greedy_run(model, prompt, 120, "python")
    held = model.tokens
    assert model.evicted > 0 and len(held) <= 512
    memory = llama_cpp.llama_get_memory(model._ctx)
    assert llama_cpp.llama_memory_seq_pos_min(memory, SEQ) == 0
    assert llama_cpp.llama_memory_seq_pos_max(memory, SEQ) == len(held) - 1, "every gap is closed"
    assert held[:4] == prompt[:4] and held[-100:] == [*prompt, *generated][-100:]
    text = model.detokenize(held)
    # Nothing ranked lower lay before the recent window: a module-level list's items went, the imports after it stay
    # (streaming drops the first 128 tokens after its sinks: the list and the imports).
    assert "import os as _os" in text and "'ArgumentParser'," not in text
    assert len(set(generated[-40:])) > 10  # still code, not one token repeated
    model.close()


def test_completions_give_the_model_the_whole_window_and_its_language(model_path: Path) -> None:
    """With "structure" the engine does not cut a long window to the context: the model keeps what the code's
    grammar ranks highest, and the next keystroke reuses it."""
    model = LocalModel(model_path, ModelConfig(n_ctx=1024, n_batch=128, overflow="structure"))
    config = CompletionConfig(max_prefix_chars=9000, first_window_chars=0, reuse_suggestions=False)
    engine = CompletionEngine(model, dataclasses.replace(config, time_budget_ms=20_000))
    text = HEAD + "        if"
    first = engine.complete(CompletionRequest(str(ARGPARSE), text, len(text)))
    assert first.prompt_tokens <= 768
    assert "def _copy_items(items):" in model.detokenize(model.tokens)
    assert model._structure.language == "python"
    typed = text + " "
    second = engine.complete(CompletionRequest(str(ARGPARSE), typed, len(typed)))
    assert second.reused_tokens >= first.prompt_tokens - 2
    model.close()
