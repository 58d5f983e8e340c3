"""The KV cache's memory measured in a running process: the buffers llama.cpp allocates, as its log prints them, and
the process's resident memory before the load, after it and after a prefill.

llama.cpp zeroes its KV buffers right after allocating them, so they are resident from the load on: a prefill adds
no KV memory, only the touched pages of the compute buffer (one micro-batch's activations). Each setting is best
measured in a fresh process (`measure_in_child`), where no earlier load's freed memory is counted.

    python -m cove.inference.model.kv_measure --n-ctx 32768 --kv-type q8_0 --swa-full false [--fill 256]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cove.config import ModelConfig
from cove.errors import ModelError
from cove.inference.model.kv_memory import kv_bytes
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import default_model_path

MIB = 2**20
_BUFFER = re.compile(r"(KV|compute|model|output) buffer size\s*=\s*([\d.]+) MiB")
_CELLS = re.compile(r"KV cache, size = (\d+) cells")
#: Ordinary code, repeated to fill the context: what is cached does not change its size.
_FILL_TEXT = "def area(width: float, height: float) -> float:\n    return width * height\n\n\n"


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def llama_log_collected() -> Iterator[list[str]]:
    """The lines of llama.cpp's log (routed to debug logging by local_model) written while the block runs. They
    reach the usual handlers only if debug logging was already on."""
    log = logging.getLogger(LocalModel.__module__)
    handler = _Collected()
    level, propagate = log.level, log.propagate
    if not log.isEnabledFor(logging.DEBUG):
        log.setLevel(logging.DEBUG)
        log.propagate = False
    log.addHandler(handler)
    try:
        yield handler.lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


@dataclass(frozen=True)
class LlamaBuffers:
    """The buffers llama.cpp reported allocating while a model and its context were loaded, in MiB."""

    #: One per KV cache: with an SWA-aware model, the global layers' cache, then the sliding layers'.
    kv_mib: tuple[float, ...]
    kv_cells: tuple[int, ...]
    #: The scheduler's reserve for one micro-batch's graph (mostly logits: n_ubatch x n_vocab floats).
    compute_mib: float
    #: The model's weights: the mapped file and any repacked copies.
    model_mib: float

    @property
    def kv_total_mib(self) -> float:
        return sum(self.kv_mib)


def parse_llama_buffers(log: str) -> LlamaBuffers:
    """The buffer sizes in llama.cpp's log of a load ("llama_kv_cache: CPU KV buffer size = 72.00 MiB", ...)."""
    sizes: dict[str, list[float]] = {"KV": [], "compute": [], "model": [], "output": []}
    for kind, mib in _BUFFER.findall(log):
        sizes[kind].append(float(mib))
    if not sizes["KV"]:
        raise ModelError("llama.cpp's log of the load names no KV buffer")
    return LlamaBuffers(
        kv_mib=tuple(sizes["KV"]),
        kv_cells=tuple(int(n) for n in _CELLS.findall(log)),
        compute_mib=sum(sizes["compute"]),
        model_mib=sum(sizes["model"]),
    )


@dataclass(frozen=True)
class ResidentMemory:
    """The process's resident memory in MiB (/proc/self/status): anonymous pages (heap, llama.cpp's buffers) and
    file pages (the mapped model)."""

    total_mib: float
    anon_mib: float
    file_mib: float


def resident_memory() -> ResidentMemory:
    """The process's resident memory now (Linux only)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError as err:
        raise ModelError(f"cannot read this process's memory ({err}); measured only on Linux") from None
    kib = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in status.splitlines()) if "kB" in v}
    return ResidentMemory(kib["VmRSS"] / 1024, kib["RssAnon"] / 1024, kib["RssFile"] / 1024)


@dataclass(frozen=True)
class KvMeasurement:
    """One setting at one context size: llama.cpp's buffers, the computed cache and the process's memory."""

    kv_type: str
    swa_full: bool
    n_ctx: int
    buffers: LlamaBuffers
    #: What `kv_bytes` computes from the GGUF's shape for the same cells, in MiB.
    computed_mib: float
    before: ResidentMemory
    loaded: ResidentMemory
    #: After a prefill of `filled_tokens` tokens (None: no prefill).
    filled: ResidentMemory | None = None
    filled_tokens: int = 0

    @property
    def load_growth_mib(self) -> float:
        """Resident memory the load added."""
        return self.loaded.total_mib - self.before.total_mib

    @property
    def anon_growth_mib(self) -> float:
        """Anonymous memory the load added: the KV buffers, the repacked weights, the touched working buffers."""
        return self.loaded.anon_mib - self.before.anon_mib

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KvMeasurement:
        buffers = data["buffers"]
        return cls(
            **{k: data[k] for k in ("kv_type", "swa_full", "n_ctx", "computed_mib", "filled_tokens")},
            buffers=LlamaBuffers(
                tuple(buffers["kv_mib"]), tuple(buffers["kv_cells"]), buffers["compute_mib"], buffers["model_mib"]
            ),
            before=ResidentMemory(**data["before"]),
            loaded=ResidentMemory(**data["loaded"]),
            filled=ResidentMemory(**data["filled"]) if data["filled"] else None,
        )


def load_measured(path: Path, config: ModelConfig) -> tuple[LocalModel, KvMeasurement]:
    """Load the model as `LocalModel` does and measure the load in this process."""
    before = resident_memory()
    with llama_log_collected() as log:
        model = LocalModel(path, config)
    loaded = resident_memory()
    # llama-cpp-python clips the micro-batch to the context; the sliding layers' cells follow it.
    n_ubatch = min(config.n_batch, config.n_ctx)
    computed = kv_bytes(model.kv_shape, config.n_ctx, config.kv_type, config.swa_full, n_ubatch) / MIB
    buffers = parse_llama_buffers("\n".join(log))
    return model, KvMeasurement(config.kv_type, config.swa_full, config.n_ctx, buffers, computed, before, loaded)


def fill(model: LocalModel, measurement: KvMeasurement, tokens: int) -> KvMeasurement:
    """Prefill `tokens` tokens of code (at most the context less one) and measure the process again."""
    tokens = min(tokens, model.n_ctx - 1)
    text = model.tokenize(_FILL_TEXT)
    sequence = [model.bos, *(text * (tokens // len(text) + 1))][:tokens]
    model.prefill(sequence)
    return dataclasses.replace(measurement, filled=resident_memory(), filled_tokens=len(sequence))


def measure(path: Path, config: ModelConfig, fill_tokens: int = 0) -> KvMeasurement:
    """Load, measure, optionally prefill `fill_tokens` tokens and measure again, in this process."""
    model, measurement = load_measured(path, config)
    try:
        return fill(model, measurement, fill_tokens) if fill_tokens else measurement
    finally:
        model.close()


def measure_in_child(path: Path, config: ModelConfig, fill_tokens: int = 0, timeout_s: float = 3600) -> KvMeasurement:
    """`measure` in a fresh Python process: no memory of an earlier load counts."""
    command = [
        sys.executable,
        "-m",
        "cove.inference.model.kv_measure",
        "--model",
        str(path),
        "--n-ctx",
        str(config.n_ctx),
    ]
    command += ["--kv-type", config.kv_type, "--swa-full", str(config.swa_full).lower()]
    command += ["--n-batch", str(config.n_batch), "--n-threads", str(config.n_threads), "--fill", str(fill_tokens)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise ModelError(f"measuring the KV cache failed: {done.stderr.strip()[-600:]}")
    return KvMeasurement.from_dict(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> int:
    """Measure one setting in this process and print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the default model)")
    parser.add_argument("--n-ctx", type=int, default=ModelConfig.n_ctx)
    parser.add_argument("--kv-type", choices=("f16", "q8_0", "q4_0"), default=ModelConfig.kv_type)
    parser.add_argument("--swa-full", choices=("true", "false"), default=str(ModelConfig.swa_full).lower())
    parser.add_argument("--n-batch", type=int, default=ModelConfig.n_batch)
    parser.add_argument("--n-threads", type=int, default=ModelConfig.n_threads)
    parser.add_argument("--fill", type=int, default=0, help="tokens to prefill before measuring again")
    args = parser.parse_args(argv)
    config = ModelConfig(
        n_ctx=args.n_ctx,
        kv_type=args.kv_type,
        swa_full=args.swa_full == "true",
        n_batch=args.n_batch,
        n_threads=args.n_threads,
    )
    measured = measure(args.model or default_model_path(), config, args.fill)
    print(json.dumps(measured.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
