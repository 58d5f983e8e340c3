"""The default model (Gemma 3) in torch, for KV-cache research and evaluation — not for keystrokes.

A compact implementation over the GGUF's own weights, dequantized once (about 20 s here) and cached as safetensors
next to the model cache, so later loads take a second or two. Attention goes through a `KvCache` (see `kv_cache`),
which lets a policy decide what each layer holds; the attention probabilities are handed to the layer's cache so that
score-based policies (H2O, SnapKV, ...) can see them. `prefill` and `decode_one_token` apart, after gpt-fast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from cove.errors import ModelError
from cove.inference.research.kv_cache import KvCache


@dataclass(frozen=True)
class GemmaConfig:
    layers: int = 18
    d_model: int = 640
    heads: int = 4
    kv_heads: int = 1
    head_dim: int = 256
    d_ff: int = 2048
    vocab: int = 262_144
    eps: float = 1e-6
    rope_global: float = 1_000_000.0
    rope_local: float = 10_000.0
    #: Keys a sliding layer's query sees, itself included (llama.cpp masks a distance >= window).
    window: int = 512
    #: Every `global_every`-th layer attends to everything.
    global_every: int = 6

    def is_global(self, layer: int) -> bool:
        return layer % self.global_every == self.global_every - 1

    @property
    def global_layers(self) -> list[int]:
        return [i for i in range(self.layers) if self.is_global(i)]


def config_from_metadata(fields: dict[str, object]) -> GemmaConfig:
    """The shape from GGUF metadata (only Gemma 3 is implemented)."""
    arch = fields.get("general.architecture")
    if arch != "gemma3":
        raise ModelError(f"the torch path implements Gemma 3 only; this model is {arch!r}")

    def number(key: str) -> float:
        value = fields[f"gemma3.{key}"]
        assert isinstance(value, int | float)
        return value

    return GemmaConfig(
        layers=int(number("block_count")),
        d_model=int(number("embedding_length")),
        heads=int(number("attention.head_count")),
        kv_heads=int(number("attention.head_count_kv")),
        head_dim=int(number("attention.key_length")),
        d_ff=int(number("feed_forward_length")),
        eps=float(number("attention.layer_norm_rms_epsilon")),
        rope_global=float(number("rope.freq_base")),
        window=int(number("attention.sliding_window")),
    )


#: Bumped whenever what the weights file holds changes.
WEIGHTS_FORMAT = 2


def weights_cache_path(gguf_path: Path) -> Path:
    stat = gguf_path.stat()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cove" / "torch" / f"{gguf_path.stem}-{stat.st_size}-{WEIGHTS_FORMAT}.safetensors"


def load_weights(gguf_path: Path) -> tuple[GemmaConfig, dict[str, torch.Tensor]]:
    """Dequantized fp32 weights and the config, from the safetensors cache or (first time) from the GGUF."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    cached = weights_cache_path(gguf_path)
    if cached.exists():
        with safe_open(str(cached), framework="pt") as handle:
            metadata = handle.metadata() or {}
            weights = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 — not a dict
        config = GemmaConfig(**{k: type(getattr(GemmaConfig(), k))(v) for k, v in metadata.items()})
        return config, weights
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("tokenizer.")}
    config = config_from_metadata(fields)
    weights = {
        tensor.name: torch.from_numpy(gguf.quants.dequantize(tensor.data, tensor.tensor_type).copy()).float()
        for tensor in reader.tensors
    }
    pieces = reader.fields["tokenizer.ggml.tokens"].contents()
    assert isinstance(pieces, list)
    weights["cove.newline_tokens"] = torch.tensor([i for i, piece in enumerate(pieces) if "\n" in str(piece)])
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    save_file(weights, str(partial), metadata={k: str(v) for k, v in vars(config).items()})
    partial.replace(cached)
    return config, weights


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # The GGUF's norm weights already include Gemma's "1 +".
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


Rotation = tuple[torch.Tensor, torch.Tensor]


def rotation(positions: torch.Tensor, base: float, dim: int) -> Rotation:
    """cos and sin ([T, D/2]) of NeoX-style rotary angles for `positions` ([T])."""
    half = dim // 2
    inv = base ** (-torch.arange(0, half, dtype=torch.float32) / half)
    angles = positions.float()[:, None] * inv[None, :]  # [T, D/2]
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, turn: Rotation) -> torch.Tensor:
    """x: [H, T, D] rotated by `turn`."""
    cos, sin = turn
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class TorchGemma:
    def __init__(self, config: GemmaConfig, weights: dict[str, torch.Tensor]) -> None:
        self.config = config
        self.w = weights
        self.embedding = weights["token_embd.weight"]  # [V, d_model], tied with the output
        #: Which tokens hold a newline (line-aware policies need the source lines).
        self.ends_line = torch.zeros(config.vocab, dtype=torch.bool)
        self.ends_line[weights["cove.newline_tokens"]] = True

    @classmethod
    def load(cls, gguf_path: Path | None = None) -> TorchGemma:
        if gguf_path is None:
            from cove.inference.model.model_files import default_model_path

            gguf_path = default_model_path()
        config, weights = load_weights(gguf_path)
        return cls(config, weights)

    def new_cache(self) -> KvCache:
        """A cache that keeps every token (the reference every policy is measured against)."""
        from cove.inference.research.kv_cache import full_cache

        return full_cache(self.config)

    @torch.inference_mode()
    def forward(
        self, tokens: torch.Tensor, cache: KvCache | Sequence[KvCache], logits_for: int | None = None
    ) -> torch.Tensor:
        """Runs `tokens` ([T]) after what `cache` holds; logits of the last `logits_for` positions (all: None).

        Given several caches (at the same position: one prompt compressed by several policies), the same tokens run
        after each, the weights read once for all of them: logits [B, T, V] instead of [T, V].
        """
        c = self.config
        caches = [cache] if isinstance(cache, KvCache) else list(cache)
        start = caches[0].next_position
        if any(each.next_position != start for each in caches):
            raise ValueError("caches run together must be at the same position")
        positions = torch.arange(start, start + tokens.shape[0])
        for each in caches:
            each.lines.extend(self.ends_line[tokens])
        x = (self.embedding[tokens] * math.sqrt(c.d_model)).expand(len(caches), -1, -1)  # [B, T, d_model]
        # Two rotary bases (global and sliding layers): their angles once per pass, not once per layer.
        turns = {base: rotation(positions, base, c.head_dim) for base in (c.rope_global, c.rope_local)}
        for i in range(c.layers):
            p = f"blk.{i}."
            h = rms_norm(x, self.w[p + "attn_norm.weight"], c.eps)
            h = self._attention(i, h, positions, turns, caches)
            x = x + rms_norm(h, self.w[p + "post_attention_norm.weight"], c.eps)
            h = rms_norm(x, self.w[p + "ffn_norm.weight"], c.eps)
            gate = F.gelu(h @ self.w[p + "ffn_gate.weight"].T, approximate="tanh")
            h = (gate * (h @ self.w[p + "ffn_up.weight"].T)) @ self.w[p + "ffn_down.weight"].T
            x = x + rms_norm(h, self.w[p + "post_ffw_norm.weight"], c.eps)
        for each in caches:
            each.advance(tokens.shape[0])
        if logits_for is not None:
            x = x[:, -logits_for:]
        logits = rms_norm(x, self.w["output_norm.weight"], c.eps) @ self.embedding.T  # [B, T, V]
        return logits[0] if isinstance(cache, KvCache) else logits

    def _attention(
        self, layer: int, h: torch.Tensor, positions: torch.Tensor, turns: dict[float, Rotation], caches: list[KvCache]
    ) -> torch.Tensor:
        c, p = self.config, f"blk.{layer}."
        b, t = h.shape[0], h.shape[1]
        q = (h @ self.w[p + "attn_q.weight"].T).view(b, t, c.heads, c.head_dim).transpose(1, 2)  # [B, H, T, D]
        k = (h @ self.w[p + "attn_k.weight"].T).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)  # [B, H_kv, T, D]
        v = (h @ self.w[p + "attn_v.weight"].T).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)  # [B, H_kv, T, D]
        q = rms_norm(q, self.w[p + "attn_q_norm.weight"], c.eps)
        k = rms_norm(k, self.w[p + "attn_k_norm.weight"], c.eps)
        turn = turns[c.rope_global if c.is_global(layer) else c.rope_local]
        q, k = rotate(q, turn), rotate(k, turn)
        out = torch.stack([self._attend(layer, q[i], k[i], v[i], positions, each) for i, each in enumerate(caches)])
        return out @ self.w[p + "attn_output.weight"].T  # [B, T, d_model]

    def _attend(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor, cache: KvCache
    ) -> torch.Tensor:
        """One cache's attention: q [H, T, D], k/v [H_kv, T, D] -> [T, H*D]; the layer's store sees the weights."""
        c = self.config
        t = q.shape[1]
        store = cache.layers[layer]
        store.append(k, v, positions)
        keys, values, key_positions, bias = store.view()  # keys/values: [H_kv, N, D], positions: [N], bias: [N] | None
        group = c.heads // c.kv_heads
        keys = keys.float().repeat_interleave(group, dim=0)  # [H, N, D]
        values = values.float().repeat_interleave(group, dim=0)
        scores = (q @ keys.transpose(1, 2)) / math.sqrt(c.head_dim)  # [H, T, N]; query_pre_attn_scalar = head_dim
        distance = positions[:, None] - key_positions[None, :]  # [T, N]
        masked = distance < 0
        if not c.is_global(layer):
            masked |= distance >= c.window
        scores = scores.masked_fill(masked, float("-inf"))
        if bias is not None:
            scores = scores + bias
        probs = scores.softmax(dim=-1)
        store.observe(probs)
        return (probs @ values).transpose(0, 1).reshape(t, c.heads * c.head_dim)  # [T, H*D]


def prefill(model: TorchGemma, tokens: list[int], cache: KvCache, chunk: int = 512) -> torch.Tensor:
    """Evaluates a prompt in chunks (the cache may compress between them); the logits of its last token."""
    if not tokens:
        raise ModelError("nothing to prefill")
    ids = torch.tensor(tokens, dtype=torch.long)
    logits = torch.empty(0)
    for begin in range(0, len(tokens), chunk):
        logits = model.forward(ids[begin : begin + chunk], cache, logits_for=1)
    return logits[-1]


def decode_one_token(model: TorchGemma, token: int, cache: KvCache) -> torch.Tensor:
    """The logits after one more token."""
    return model.forward(torch.tensor([token], dtype=torch.long), cache, logits_for=1)[-1]


def greedy(
    model: TorchGemma, tokens: list[int], cache: KvCache, max_tokens: int, stop: set[int] | None = None
) -> list[int]:
    """Greedy continuation of `tokens` through `cache` (prefilled here), stopping after a token in `stop`."""
    out = [int(prefill(model, tokens, cache).argmax())]
    while len(out) < max_tokens and not (stop and out[-1] in stop):
        out.append(int(decode_one_token(model, out[-1], cache).argmax()))
    return out
