"""KV cache settings on the real model: an SWA-aware cache gives what a fresh evaluation gives, after edits near the
cursor (prefix reused) and far back (beyond the sliding window: evaluated again); quantized caches load and run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from cove.config import ModelConfig
from cove.errors import ModelError
from cove.inference.model.local_model import LocalModel
from tests.conftest import ARGPARSE

pytestmark = pytest.mark.model


def greedy_run(model: LocalModel, tokens: list[int], steps: int = 8) -> list[int]:
    model.prefill(tokens)
    out = []
    for _ in range(steps):
        token = model.greedy()
        out.append(token)
        model.decode([token])
    return out


def agreement(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]) -> float:
    """How alike two next-token distributions are (the correlation of their logits)."""
    return float(np.corrcoef(x, y)[0, 1])


def test_an_swa_aware_cache_matches_a_fresh_evaluation_after_near_and_far_edits(model_path: Path) -> None:
    """The next-token logits after a reuse agree with a fresh evaluation's: the same first choice and correlation
    near 1 (a wrong context, e.g. a stale window, falls to ~0.7). Not the same bits: a few new tokens run through
    other matmul kernels than a batch does (seen on AVX2 with repacked weights: a greedy run drifted after a token)."""
    model = LocalModel(model_path, ModelConfig(n_ctx=4096, swa_full=False))
    assert model.swa_window == 512
    text = ARGPARSE.read_text()[:12_000]
    original = [model.bos, *model.tokenize(text)][:1800]
    near = original[:1790] + model.tokenize("\n    def")  # an edit near the end: the prefix is reused
    far = original[:100] + model.tokenize("# edited\n") + original[100:1700]  # beyond the window
    greedy_run(model, original)
    reused_near = model.prefill(near)
    after_near = model.logits().copy()
    reused_far = model.prefill(far)
    after_far = model.logits().copy()
    fresh = []
    for tokens in (near, far):
        model.clear()
        model.prefill(tokens)
        fresh.append(model.logits().copy())
    model.close()
    assert reused_near >= 1700 and reused_far == 0
    for reused, again in zip((after_near, after_far), fresh, strict=True):
        assert int(np.argmax(reused)) == int(np.argmax(again))
        assert agreement(reused, again) > 0.99, agreement(reused, again)
    assert agreement(after_near, fresh[1]) < 0.9, "the check tells contexts apart"


def test_an_swa_aware_cache_shorter_than_the_window_keeps_its_prefix(model_path: Path) -> None:
    """A sequence shorter than the sliding window holds every position the window needs: a rejected draft or the
    next keystroke rolls back a few tokens and keeps the rest (it once dropped everything, and the tokens decoded
    after a rejected draft saw no context at all)."""
    model = LocalModel(model_path, ModelConfig(n_ctx=4096, swa_full=False))
    tokens = [model.bos, *model.tokenize(ARGPARSE.read_text()[:3000])][:300]
    generated = greedy_run(model, tokens, 5)
    model.truncate(len(model.tokens) - 3)
    assert model.tokens == tokens + generated[:2]
    edited = tokens[:290] + model.tokenize("\n    def")
    assert model.prefill(edited) >= 290
    after = model.logits().copy()
    model.clear()
    model.prefill(edited)
    fresh = model.logits().copy()
    model.close()
    assert int(np.argmax(after)) == int(np.argmax(fresh)) and agreement(after, fresh) > 0.99


@pytest.mark.parametrize(("kv_type", "share"), [("q8_0", 0.6), ("q4_0", 0.4)])
def test_quantized_caches_hold_less_and_choose_alike(model_path: Path, kv_type: str, share: float) -> None:
    """`kv_type` takes effect: the same prompt's KV state is at most `share` of f16's (q8_0 keeps 8.5 bits a value,
    q4_0 4.5), and the next token's choice is f16's."""
    held: dict[str, tuple[int, np.ndarray]] = {}
    for kind in ("f16", kv_type):
        model = LocalModel(model_path, ModelConfig(n_ctx=2048, kv_type=kind, swa_full=False))  # type: ignore[arg-type]
        tokens = [model.bos, *model.tokenize(ARGPARSE.read_text()[:1500])][:400]
        model.prefill(tokens)
        held[kind] = (len(model.save_state()), model.logits().copy())
        if kind != "f16":
            assert len(greedy_run(model, tokens, 4)) == 4
        model.close()
    (f16_bytes, f16_logits), (bytes_held, logits) = held["f16"], held[kv_type]
    assert bytes_held <= share * f16_bytes, (kv_type, bytes_held, f16_bytes)
    assert int(np.argmax(logits)) == int(np.argmax(f16_logits)) and agreement(logits, f16_logits) > 0.9


def test_a_sequence_longer_than_the_context_keeps_its_sinks_and_recent_tokens(model_path: Path) -> None:
    streaming = LocalModel(model_path, ModelConfig(n_ctx=512, n_batch=128))
    tokens = [streaming.bos, *streaming.tokenize(ARGPARSE.read_text()[30000:36000])][:900]
    generated = greedy_run(streaming, tokens, 40)
    held = list(streaming.tokens)
    assert streaming.evicted > 0 and len(held) <= 512
    assert held[:4] == tokens[:4]  # the attention sinks stay
    assert held[4 : 4 + len(tokens) - 4 - streaming.evicted] == tokens[4 + streaming.evicted :]  # then the recent ones
    assert held[-40:] == generated
    assert len(set(generated)) > 10  # still code, not one token repeated
    streaming.close()
    refusing = LocalModel(model_path, ModelConfig(n_ctx=512, n_batch=128, overflow="error"))
    with pytest.raises(ModelError, match="does not fit the context of 512"):
        refusing.prefill(tokens)
    refusing.close()
