"""The torch research path on the real default model: the full cache is exact, and every policy keeps to its budget.

A small, fast version of benchmarks/kv_compression.py: correctness only (quality figures come from the benchmark).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

from cove.config import ModelConfig
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import default_model_path
from cove.inference.research.kv_cache import KvCache, WindowStore, full_cache
from cove.inference.research.kv_eval import Sample, evaluate_sample
from cove.inference.research.kv_policies import (
    POLICIES,
    QUANT_POLICIES,
    BudgetStore,
    capacity_for,
    compress,
    policy_cache,
    pyramid_capacities,
)
from cove.inference.research.kv_quant import RESIDUAL, dequantize, pack, quantize, unpack
from cove.inference.research.torch_gemma import TorchGemma, decode_one_token, greedy, prefill


@pytest.fixture(scope="module")
def model() -> TorchGemma:
    torch.set_num_threads(2)
    return TorchGemma.load()


@pytest.fixture(scope="module")
def llama() -> LocalModel:
    return LocalModel(default_model_path(), ModelConfig(n_ctx=1024, n_batch=256))


@pytest.fixture(scope="module")
def prompt(llama: LocalModel) -> list[int]:
    """About 600 tokens of argparse.py: longer than the 512-token sliding window."""
    text = Path(argparse.__file__).read_text()[:2400]
    return [llama.bos, *llama.tokenize(text)]


@pytest.fixture(scope="module")
def prefilled(model: TorchGemma, prompt: list[int]) -> KvCache:
    """The prompt in a full cache that records the attention statistics policies compress from."""
    full = full_cache(model.config, torch.float16, record=True)
    prefill(model, prompt, full)
    return full


def test_pack_roundtrip_and_kivi_error() -> None:
    codes = torch.randint(0, 16, (3, 64), dtype=torch.uint8)
    assert torch.equal(unpack(pack(codes, 4), 4), codes)
    codes = torch.randint(0, 4, (3, 64), dtype=torch.uint8)
    assert torch.equal(unpack(pack(codes, 2), 2), codes)
    x = torch.randn(1, 32, 256)
    for bits in (4, 2):
        packed, scale, low = quantize(x, bits, dim=1)
        assert packed.dtype == torch.uint8 and packed.shape[-1] == 256 * bits // 8
        error = (dequantize(packed, scale, low, bits) - x).abs()
        assert float(error.max()) <= float(scale.float().max()) / 2 + 1e-2  # within half a step


def test_torch_model_agrees_with_llama_cpp(model: TorchGemma, llama: LocalModel, prompt: list[int]) -> None:
    """Same weights: teacher-forced greedy choices agree (llama.cpp quantizes activations, so not every one)."""
    tokens = prompt[:256]
    llama.clear()
    llama.decode(tokens, all_logits=True)
    theirs = torch.tensor([llama.greedy(i) for i in range(len(tokens))])
    ours = model.forward(torch.tensor(tokens), model.new_cache()).argmax(dim=-1)
    assert float((ours == theirs).float().mean()) >= 0.9


def plain_generation(model: TorchGemma, tokens: list[int], count: int) -> list[int]:
    """Greedy tokens with no cache reuse: the whole sequence evaluated afresh in one pass for every token."""
    sequence = list(tokens)
    for _ in range(count):
        logits = model.forward(torch.tensor(sequence), model.new_cache(), logits_for=1)
        sequence.append(int(logits[-1].argmax()))
    return sequence[len(tokens) :]


def test_full_cache_equals_plain_generation(model: TorchGemma, prompt: list[int]) -> None:
    cache = model.new_cache()
    cached = greedy(model, prompt, cache, max_tokens=5)  # chunked prefill, then one token at a time
    assert cached == plain_generation(model, prompt, 5)
    sliding = [store for store in cache.layers if isinstance(store, WindowStore)]
    assert all(store.tokens == model.config.window for store in sliding)
    assert cache.global_tokens() == [len(prompt) + 4] * 3


def within_budget(cache: KvCache, policy: str, capacity: int, window: int) -> None:
    held = cache.global_tokens()
    if policy in QUANT_POLICIES:
        full_bytes = sum(held) * 2 * 256 * 2
        bits = int(policy[-1])
        quantized = [max(0, n - RESIDUAL) for n in held]
        # Codes plus fp16 scale and minimum per channel-group and per token-group, and positions.
        limit = sum(
            q * 2 * 256 * (bits / 8 + 4 / 32) + (n - q) * 2 * 256 * 2 + n * 4
            for q, n in zip(quantized, held, strict=True)
        )
        assert cache.global_bytes() <= limit < full_bytes
    else:
        caps = pyramid_capacities(capacity, 3) if policy.startswith("pyramidkv") else [capacity] * 3
        assert all(n <= cap for n, cap in zip(held, caps, strict=True)), (policy, held, caps)
        if policy != "full":
            assert sum(held) <= sum(caps)
    assert all(s.tokens <= window for i, s in enumerate(cache.layers) if i not in cache.global_layers)


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "full"])
def test_every_policy_stays_within_its_budget(
    model: TorchGemma, prompt: list[int], prefilled: KvCache, policy: str
) -> None:
    """Trimming as it goes (chunked prefill, then decoding), and compressing a prefilled full cache."""
    capacity = capacity_for(len(prompt), 0.25)
    window = model.config.window
    cache = policy_cache(policy, model.config, capacity)
    logits = prefill(model, prompt, cache, chunk=128)
    within_budget(cache, policy, capacity, window)
    for _ in range(3):
        logits = decode_one_token(model, int(logits.argmax()), cache)
        within_budget(cache, policy, capacity, window)
    assert cache.next_position == len(prompt) + 3
    if policy not in QUANT_POLICIES:
        stores = [cache.layers[i] for i in cache.global_layers]
        assert all(isinstance(s, BudgetStore) for s in stores)
        if policy == "streaming":  # the attention sinks stay
            assert all(s.positions[:4].tolist() == [0, 1, 2, 3] for s in stores)
        assert all(int(s.positions[-1]) == len(prompt) + 2 for s in stores)  # the newest token is always held

    compressed = compress(prefilled, policy, model.config, capacity)
    within_budget(compressed, policy, capacity, window)
    assert compressed.global_bytes() < prefilled.global_bytes()
    assert compressed.next_position == prefilled.next_position


@pytest.mark.parametrize(
    ("flag", "variable", "says"),
    [
        (None, None, "neither --kvpress-python nor COVE_KVPRESS_PYTHON"),
        ("nowhere/flag/python", None, "no python at nowhere/flag/python"),
        (None, "nowhere/variable/python", "no python at nowhere/variable/python"),
        ("nowhere/flag/python", "nowhere/variable/python", "no python at nowhere/flag/python"),
    ],
)
def test_kvpress_python_comes_from_the_flag_then_the_variable(
    flag: str | None,
    variable: str | None,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The benchmark stops before loading anything when kvpress is asked for without a usable python, and says how
    to create its virtualenv."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "kv_compression.py"
    spec = importlib.util.spec_from_file_location("kv_compression_benchmark", path)
    assert spec and spec.loader
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    if variable:
        monkeypatch.setenv("COVE_KVPRESS_PYTHON", variable)
    else:
        monkeypatch.delenv("COVE_KVPRESS_PYTHON", raising=False)
    with pytest.raises(SystemExit) as stopped:
        benchmark.main(["--parts", "kvpress", *(["--kvpress-python", flag] if flag else [])])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err
    assert "python3 -m venv .venv-kvpress" in err


def test_caches_run_together_give_what_each_gives_alone(
    model: TorchGemma, prompt: list[int], prefilled: KvCache
) -> None:
    """The evaluation runs every policy's cache in one pass per token: the same logits as one cache at a time."""
    policies = ["full", "snapkv", "structure+kivi4"]
    capacity = capacity_for(len(prompt), 0.25)
    together = [compress(prefilled, p, model.config, capacity) for p in policies]
    alone = [compress(prefilled, p, model.config, capacity) for p in policies]
    tokens = [int(t) for t in prompt[-3:]]
    for token in tokens:
        batched = model.forward(torch.tensor([token]), together)[:, -1]  # [B, V]
        for index, cache in enumerate(alone):
            single = model.forward(torch.tensor([token]), cache)[-1]
            # The same sums, blocked differently by the batched matmul: equal up to float rounding.
            assert float((batched[index] - single).abs().max()) < 0.02, policies[index]
            assert int(batched[index].argmax()) == int(single.argmax())
    assert [c.global_tokens() for c in together] == [c.global_tokens() for c in alone]


def test_a_budget_of_bytes_is_a_share_of_the_full_caches_peak(model: TorchGemma, prompt: list[int]) -> None:
    """Scored as a user's decoding runs: trimmed after every token, charged for the most it held at once."""
    sample = Sample("argparse@0", prompt[:-8], prompt[-8:], [(0, 8)], ranks=[2] * (len(prompt) - 8))
    configs = [("full", 1.0), ("snapkv", 0.25), ("snapkv+kivi4", 0.25), ("structure", 0.5), ("kivi4", 1.0)]
    results = evaluate_sample(model, sample, configs)
    full = results[("full", 1.0)]
    assert full.peak_bytes == 3 * (len(prompt) - 1) * (2 * 2 * 256 + 4)  # prompt and continuation on 3 layers
    for config in configs[1:4]:
        share = results[config].peak_bytes / full.peak_bytes
        # Never above the budget; a selection over KIVI-4 entries a little under it on a short prompt (its groups
        # are not all full).
        assert config[1] * 0.85 <= share <= config[1] + 0.005, (config, share)
    assert results[("snapkv+kivi4", 0.25)].held_tokens > results[("snapkv", 0.25)].held_tokens  # 4-bit entries
    assert full.agreement == 1.0 and len(full.lines) == 1
