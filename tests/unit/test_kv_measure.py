"""llama.cpp's buffer sizes read from its own log of a load (lines copied from llama-cpp-python 0.3.36 loading the
default model with an SWA-aware q8_0 cache at 32K), and a measurement's wire form between processes."""

from __future__ import annotations

import json

import pytest

from cove.inference.model.kv_measure import KvMeasurement, ResidentMemory, parse_llama_buffers, resident_memory

LOAD_LOG = """\
load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
load_tensors:   CPU_REPACK model buffer size =    12.66 MiB
llama_context:        CPU  output buffer size =     1.00 MiB
llama_kv_cache_iswa: creating non-SWA KV cache, size = 32768 cells
llama_kv_cache:        CPU KV buffer size =    51.00 MiB
llama_kv_cache: size =   51.00 MiB ( 32768 cells,   3 layers,  1/1 seqs), K (q8_0):   25.50 MiB, V (q8_0):   25.50 MiB
llama_kv_cache_iswa: creating     SWA KV cache, size = 768 cells
llama_kv_cache:        CPU KV buffer size =     5.98 MiB
llama_kv_cache: size =    5.98 MiB (   768 cells,  15 layers,  1/1 seqs), K (q8_0):    2.99 MiB, V (q8_0):    2.99 MiB
sched_reserve:        CPU compute buffer size =   257.25 MiB
~llama_context:        CPU compute buffer size is 257.2510 MiB, matches expectation of 257.2510 MiB
"""


def test_the_buffers_of_a_load_are_read_from_llama_cpps_log() -> None:
    buffers = parse_llama_buffers(LOAD_LOG)
    assert buffers.kv_mib == (51.0, 5.98) and buffers.kv_cells == (32768, 768)
    assert buffers.kv_total_mib == pytest.approx(56.98)
    assert buffers.compute_mib == 257.25  # the reserve, not the check printed when the context is freed
    assert buffers.model_mib == pytest.approx(235.16 + 12.66)


def test_a_measurement_crosses_processes_as_json() -> None:
    memory = ResidentMemory(400.0, 140.0, 260.0)
    measured = KvMeasurement(
        "q8_0", False, 32768, parse_llama_buffers(LOAD_LOG), 56.977, memory, memory, filled=memory, filled_tokens=256
    )
    assert KvMeasurement.from_dict(json.loads(json.dumps(measured.to_dict()))) == measured
    unfilled = KvMeasurement("f16", True, 4096, parse_llama_buffers(LOAD_LOG), 72.0, memory, memory)
    assert KvMeasurement.from_dict(json.loads(json.dumps(unfilled.to_dict()))) == unfilled


def test_this_processes_resident_memory() -> None:
    memory = resident_memory()
    assert 0 < memory.anon_mib < memory.total_mib and abs(memory.anon_mib + memory.file_mib - memory.total_mib) < 2
