"""Knobs of `[model]` and `[completion]` set in a project's `.cove/config.toml`, each shown by its effect on the real
default model (the layers are read by `load_config`, as every face reads them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import llama_cpp
import pytest

from cove.config import CoveConfig, load_config
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.model.local_model import LocalModel
from tests.conftest import ARGPARSE, JSON_DECODER
from tests.engine.test_kv_settings import greedy_run

pytestmark = pytest.mark.model


def project_config(tmp_path: Path, toml: str) -> CoveConfig:
    """The config a project with this `.cove/config.toml` runs with (no user file, no environment)."""
    (tmp_path / ".cove").mkdir(exist_ok=True)
    (tmp_path / ".cove" / "config.toml").write_text(toml)
    loaded = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "no-user-config")})
    assert str(tmp_path / ".cove" / "config.toml") in loaded.sources
    return loaded.config


@pytest.mark.parametrize("sinks", [4, 24])
def test_sink_tokens_sets_how_many_first_tokens_survive_eviction(tmp_path: Path, model_path: Path, sinks: int) -> None:
    config = project_config(tmp_path, f"[model]\nn_ctx = 512\nn_batch = 128\nsink_tokens = {sinks}\n")
    model = LocalModel(model_path, config.model)
    try:
        tokens = [model.bos, *model.tokenize(ARGPARSE.read_text()[30000:36000])][:900]
        greedy_run(model, tokens, 8)
        held, evicted = list(model.tokens), model.evicted
    finally:
        model.close()
    assert evicted > 0
    assert held[:sinks] == tokens[:sinks]  # the sinks stay...
    assert held[sinks : sinks + 16] == tokens[sinks + evicted : sinks + evicted + 16]  # then the recent ones
    assert held[sinks - 1 : sinks + 15] != tokens[sinks - 1 : sinks + 15]  # not one sink more


@pytest.mark.parametrize("threads", [1, 2])
def test_n_threads_reaches_llama_cpp(tmp_path: Path, model_path: Path, threads: int) -> None:
    config = project_config(tmp_path, f"[model]\nn_ctx = 512\nn_threads = {threads}\n")
    model = LocalModel(model_path, config.model)
    try:
        ctx = model._llm.ctx
        assert (llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)) == (threads, threads)
    finally:
        model.close()


def test_kv_cache_mib_bounds_the_document_states_kept(tmp_path: Path, model_path: Path) -> None:
    """With the default budget, going back to a document restores its KV state; with `kv_cache_mib = 0`, nothing is
    kept and the document is evaluated again."""
    a_text, b_text = ARGPARSE.read_text(), JSON_DECODER.read_text()
    a = CompletionRequest(str(ARGPARSE), a_text, a_text.index("seen_non_default_actions.add(action)") + 12)
    b = CompletionRequest(str(JSON_DECODER), b_text, b_text.index("def raw_decode(self, s, idx=0):") + 8)
    back = CompletionRequest(a.document, a.text, a.offset + 1)
    reused = {}
    for budget in ("", "kv_cache_mib = 0\n"):
        config = project_config(tmp_path, f"[model]\nn_ctx = 2048\n[completion]\n{budget}")
        # Bounded by tokens, not time (a loaded machine gets the same text), and the full window at once.
        completion = dataclasses.replace(
            config.completion, time_budget_ms=20_000, first_window_chars=0, reuse_suggestions=False
        )
        model = LocalModel(model_path, config.model)
        try:
            engine = CompletionEngine(model, completion)
            engine.complete(a)
            engine.complete(b)
            reused[budget] = (engine.saved_state_bytes, engine.complete(back))
        finally:
            model.close()
    kept, restored = reused[""]
    assert kept > 0 and restored.reused_tokens > 0.9 * restored.prompt_tokens, restored
    kept, again = reused["kv_cache_mib = 0\n"]
    assert kept == 0 and again.reused_tokens < 0.1 * again.prompt_tokens, again
    assert again.text == restored.text  # the budget changes speed, never the suggestion
