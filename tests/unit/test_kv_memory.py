"""KV cache sizes from GGUF metadata, checked against the default model's known figures."""

from __future__ import annotations

from cove.inference.model.kv_memory import SETTINGS, cells, kv_bytes, shape_from_metadata

GEMMA3_270M = {
    "general.architecture": "gemma3",
    "gemma3.block_count": "18",
    "gemma3.attention.head_count": "4",
    "gemma3.attention.head_count_kv": "1",
    "gemma3.attention.key_length": "256",
    "gemma3.attention.value_length": "256",
    "gemma3.attention.sliding_window": "512",
    "gemma3.embedding_length": "640",
}
MIB = 1 << 20


def test_the_default_models_cache_at_32k() -> None:
    shape = shape_from_metadata(GEMMA3_270M)
    assert (shape.layers, shape.global_layers, shape.sliding_window) == (18, 3, 512)
    assert shape.bytes_per_token_per_layer_f16 == 1024
    assert kv_bytes(shape, 32768) == 576 * MIB  # every layer keeps every token
    aware = kv_bytes(shape, 32768, swa_full=False, n_ubatch=512)
    assert aware == (3 * 32768 + 15 * 1024) * 1024  # 96 MiB + 15 MiB
    assert kv_bytes(shape, 32768, "q4_0", swa_full=False) * 8 <= 576 * MIB  # the 1/8 target
    sizes = [kv_bytes(shape, 32768, kv_type, swa_full) for _, kv_type, swa_full in SETTINGS]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 576 * MIB


def test_a_model_without_sliding_layers_keeps_every_token() -> None:
    llama = {
        "general.architecture": "llama",
        "llama.block_count": "2",
        "llama.attention.head_count": "4",
        "llama.attention.head_count_kv": "2",
        "llama.embedding_length": "256",
    }
    shape = shape_from_metadata(llama)
    assert shape.global_layers == 2 and kv_bytes(shape, 100, swa_full=False) == kv_bytes(shape, 100)
    assert kv_bytes(shape, 100) == 2 * 256 * 2 * (64 + 64) * 2  # 100 tokens take 256 cells, as llama.cpp pads them


def test_cells_are_padded_as_llama_cpp_pads_them() -> None:
    shape = shape_from_metadata(GEMMA3_270M)
    assert cells(1000) == 1024 and cells(4096) == 4096
    # 3 global layers of 1024 cells, 15 sliding ones of 768 (window 512 + micro-batch 100, padded), 1 KiB per cell
    assert kv_bytes(shape, 1000, swa_full=False, n_ubatch=100) == (3 * 1024 + 15 * 768) * 1024
    assert kv_bytes(shape, 300, swa_full=False, n_ubatch=300) == 18 * 512 * 1024  # the window cannot outgrow n_ctx
