"""The KV cache measured in running processes with the real default model: llama.cpp allocates exactly the cells
`kv_bytes` computes (the context and an SWA-aware window padded to 256), the buffers are resident from the load on,
and `cove doctor` prints the measured figures beside the computed ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cove.config import ModelConfig
from cove.inference.model.kv_measure import measure_in_child

pytestmark = pytest.mark.model

#: llama.cpp prints each buffer in MiB with two decimals.
PRINTED = 0.006


def test_llama_cpp_allocates_the_computed_cells(model_path: Path) -> None:
    full = measure_in_child(model_path, ModelConfig(n_ctx=4096, kv_type="f16", swa_full=True))
    q8_aware = measure_in_child(model_path, ModelConfig(n_ctx=4096, kv_type="q8_0", swa_full=False))
    padded = measure_in_child(model_path, ModelConfig(n_ctx=1000, kv_type="f16", swa_full=False, n_batch=100))
    assert full.buffers.kv_mib == (12.0, 60.0) and full.buffers.kv_cells == (4096, 4096)  # 3 global, 15 sliding
    assert q8_aware.buffers.kv_cells == (4096, 768)  # the sliding layers: window 512 + one micro-batch of 256
    assert padded.buffers.kv_cells == (1024, 768)  # 1000 tokens -> 1024 cells; 512 + 100 -> 768
    for measured in (full, q8_aware, padded):
        assert abs(measured.buffers.kv_total_mib - measured.computed_mib) <= PRINTED * len(measured.buffers.kv_mib)
    assert q8_aware.buffers.kv_total_mib * 5 < full.buffers.kv_total_mib
    # llama.cpp reserves one micro-batch's logits for every token of it: n_ubatch x 262,144 floats, ~1 MiB a token
    assert full.buffers.compute_mib == pytest.approx(256 * 1.005, abs=1)
    assert padded.buffers.compute_mib == pytest.approx(100 * 1.005, abs=1)


def test_the_kv_buffers_are_resident_from_the_load(model_path: Path) -> None:
    """llama.cpp zeroes its KV buffers when it allocates them: four times the context adds the four times larger
    buffers to the resident memory at once, and a prefill adds only the compute buffer's touched pages."""
    small = measure_in_child(model_path, ModelConfig(n_ctx=4096), fill_tokens=300)
    large = measure_in_child(model_path, ModelConfig(n_ctx=16384), fill_tokens=300)
    kv_added = large.buffers.kv_total_mib - small.buffers.kv_total_mib
    assert kv_added == 216.0
    assert large.anon_growth_mib - small.anon_growth_mib == pytest.approx(kv_added, abs=10)
    assert small.filled is not None and small.filled_tokens == 300
    assert small.filled.anon_mib - small.loaded.anon_mib < 30  # 300 tokens' keys and values alone are 5 MiB


def doctor(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cove.cli", "doctor", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_doctor_prints_the_configured_cache_as_measured(clean_env: dict[str, str]) -> None:
    env = dict(clean_env, COVE_MODEL_N_CTX="32768", COVE_MODEL_KV_TYPE="q8_0", COVE_MODEL_SWA_FULL="false")
    out = doctor(env=env)
    assert (
        "ok  kv cache   57.0 MiB in llama.cpp's KV buffers (32768 + 768 cells), 57.0 MiB computed, "
        "at n_ctx 32768 with kv_type q8_0, swa_full false" in out
    ), out
    assert "MiB of the mapped model file" in out and "compute buffer 257 MiB reserved" in out
    assert "cove doctor --memory" in out and "f16, every layer full-size" not in out


def test_doctor_memory_measures_every_setting_at_4k_16k_and_32k(clean_env: dict[str, str]) -> None:
    out = doctor("--memory", env=clean_env)
    rows = [line.split() for line in out.splitlines() if line.startswith("     ") and "layer" in line]
    assert len(rows) == 12, out
    table = {(" ".join(row[:-6]), int(row[-6])): row[-5:] for row in rows}
    full = table["f16, every layer full-size", 32768]
    q8 = table["q8_0, sliding layers to their window", 32768]
    assert float(full[0]) == 576.0 and float(q8[0]) < float(full[0]) / 9  # llama.cpp's buffers
    assert all(abs(float(measured) - float(computed)) <= 0.1 for measured, computed, *_ in table.values())
    assert "cove doctor --memory" not in out  # no hint to run what just ran
