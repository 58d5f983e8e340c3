"""The KV cache's memory per setting, measured in the running process: llama.cpp's own KV buffers beside the size
computed from the GGUF's shape, and the process's resident memory after the load and after a prefill.

Each setting and context size is loaded in a fresh process (inference/model/kv_measure.py), so no earlier load's freed
memory counts. Columns, in MiB:

  llama.cpp   the KV buffers llama.cpp's log reports allocating (global layers + sliding layers)
  computed    kv_memory.kv_bytes for the same context, kv_type, swa_full and micro-batch
  x less      f16 full-size's llama.cpp figure at the same n_ctx over this one's, measured in this run
  +load       resident memory the load added (the mapped model file, then anonymous memory)
  anon-KV     anonymous memory the load added, less the KV buffers: the same in every row when the buffers are
              resident whole from the load
  +fill       anonymous memory the prefill added after the load (one micro-batch, or the whole context with --fill)

    .venv/bin/python benchmarks/kv_memory.py [--fill] [--contexts 4096 16384 32768] [--n-batch 256]
"""

from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from cove.config import ModelConfig
from cove.inference.model.kv_measure import KvMeasurement, measure_in_child
from cove.inference.model.kv_memory import SETTINGS
from cove.inference.model.model_files import default_model_path

HEADER = f"{'setting':<37} {'n_ctx':>6} {'llama.cpp':>9} {'computed':>8} {'x less':>6} {'+load':>6} {'anon-KV':>7}"


def row(name: str, measured: KvMeasurement, full_kv: float) -> str:
    kv = measured.buffers.kv_total_mib
    filled = measured.filled.anon_mib - measured.loaded.anon_mib if measured.filled else float("nan")
    return (
        f"{name:<37} {measured.n_ctx:>6} {kv:>9.2f} {measured.computed_mib:>8.2f} {full_kv / kv:>5.1f}x "
        f"{measured.load_growth_mib:>6.0f} {measured.anon_growth_mib - kv:>7.1f} {filled:>+5.0f} "
        f"({measured.filled_tokens})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--contexts", type=int, nargs="+", default=[4096, 16384, 32768])
    parser.add_argument("--n-batch", type=int, default=ModelConfig.n_batch)
    parser.add_argument("--fill", action="store_true", help="prefill the whole context, not one micro-batch")
    args = parser.parse_args()
    path = default_model_path()
    runs = [(n_ctx, setting) for n_ctx in args.contexts for setting in SETTINGS]
    rows: list[str] = []
    full: dict[int, float] = {}
    started = time.perf_counter()
    for n_ctx, (name, kv_type, swa_full) in tqdm(runs, desc="settings", file=sys.stderr):
        config = ModelConfig(n_ctx=n_ctx, kv_type=kv_type, swa_full=swa_full, n_batch=args.n_batch)
        measured = measure_in_child(path, config, fill_tokens=n_ctx - 1 if args.fill else args.n_batch)
        full.setdefault(n_ctx, measured.buffers.kv_total_mib)  # SETTINGS lists f16 full-size first
        rows.append(row(name, measured, full[n_ctx]))
    filled = "the whole context" if args.fill else f"one micro-batch ({args.n_batch} tokens)"
    print(f"KV cache by setting, MiB, each loaded in a fresh process; n_batch = n_ubatch = {args.n_batch}")
    print(f"+fill: anonymous memory added by prefilling {filled}, tokens in brackets")
    print(f"{HEADER} {'+fill':>5}")
    print("\n".join(rows))
    print(f"{time.perf_counter() - started:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
