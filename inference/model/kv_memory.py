"""How much memory a model's KV cache takes, per setting, from the GGUF's own metadata.

For the default model (Gemma 3 270M: 18 layers, 1 KV head of 256, a 512-token sliding window on 5 of every 6 layers)
a cache that keeps every token on every layer in f16 is 18 KiB per token, 576 MiB at 32K; an SWA-aware cache keeps
the sliding layers to their window and pays per token only on the 3 global layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

KvType = Literal["f16", "q8_0", "q4_0"]
#: Bytes per cached element: f16, and ggml's block formats (32 values in 34 / 18 bytes).
BYTES_PER_ELEMENT: dict[KvType, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
#: Architectures whose sliding-window layers follow a fixed pattern: every Nth layer is global (llama.cpp's own).
GLOBAL_EVERY = {"gemma3": 6, "gemma2": 2, "cohere2": 4}
#: llama.cpp rounds the context, and an SWA-aware cache's window plus micro-batch, up to this many cells (seen in
#: llama-cpp-python 0.3.36's log: n_ctx 1000 -> 1024 cells; window 512 + micro-batch 100 -> 768).
CELL_PADDING = 256


@dataclass(frozen=True)
class KvShape:
    layers: int
    kv_heads: int
    key_length: int
    value_length: int
    #: Tokens the sliding layers attend to (0: none slides).
    sliding_window: int
    global_layers: int

    @property
    def bytes_per_token_per_layer_f16(self) -> int:
        return self.kv_heads * (self.key_length + self.value_length) * 2


def shape_from_metadata(metadata: Mapping[str, str]) -> KvShape:
    """The cache's shape from GGUF metadata (`general.architecture` and `<arch>.attention.*`)."""
    arch = metadata.get("general.architecture", "llama")

    def number(key: str, default: int = 0) -> int:
        return int(metadata.get(f"{arch}.{key}", default))

    layers = number("block_count")
    heads = number("attention.head_count", 1)
    kv_heads = number("attention.head_count_kv", heads)
    head_dim = number("embedding_length") // max(heads, 1)
    window = number("attention.sliding_window")
    every = GLOBAL_EVERY.get(arch, 1) if window else 1
    return KvShape(
        layers=layers,
        kv_heads=kv_heads,
        key_length=number("attention.key_length", head_dim),
        value_length=number("attention.value_length", head_dim),
        sliding_window=window,
        global_layers=layers // every if window else layers,
    )


def cells(tokens: int) -> int:
    """KV cells llama.cpp allocates for `tokens`: rounded up to a multiple of `CELL_PADDING`."""
    return -(-tokens // CELL_PADDING) * CELL_PADDING


def kv_bytes(shape: KvShape, n_ctx: int, kv_type: KvType = "f16", swa_full: bool = True, n_ubatch: int = 512) -> int:
    """Bytes the cache holds at `n_ctx` tokens, in llama.cpp's cells. An SWA-aware cache (`swa_full=False`) keeps
    each sliding layer to its window plus one micro-batch."""
    per_layer_token = shape.kv_heads * (shape.key_length + shape.value_length) * BYTES_PER_ELEMENT[kv_type]
    sliding = shape.layers - shape.global_layers
    context = cells(n_ctx)
    aware = not swa_full and shape.sliding_window
    sliding_cells = min(context, cells(shape.sliding_window + n_ubatch)) if aware else context
    return int(per_layer_token * (shape.global_layers * context + sliding * sliding_cells))


#: The settings worth comparing: (description, kv_type, swa_full), the full-size f16 cache first.
SETTINGS: tuple[tuple[str, KvType, bool], ...] = (
    ("f16, every layer full-size", "f16", True),
    ("f16, sliding layers to their window", "f16", False),
    ("q8_0, sliding layers to their window", "q8_0", False),
    ("q4_0, sliding layers to their window", "q4_0", False),
)
