"""KV-cache compression on real code: quality against memory held, for every policy and budget, in one run.

Samples are long prompts from Python standard library modules (nobody here wrote them) cut at a line start, scored on
the 64 tokens that really follow; needle samples define a value on a module's second line and ask for it ~2,000 tokens
later. Two paths, each against its own full cache measured in the same run:

  research path (torch, inference/research/torch_gemma.py): the prompt is prefilled once with the full cache, then
  compressed by each policy to a budget (a fraction of the prompt's tokens on the global layers; KIVI keeps every
  token in 4 or 2 bits) and the continuation is run teacher-forced. Bytes are what the layer stores hold.

  fast path (llama.cpp, what users run): f16 full-size, SWA-aware, q8_0 and q4_0 caches on the same samples.

  kvpress (optional): NVIDIA's presses on the same samples, run by benchmarks/kvpress_side.py in a virtualenv of its
  own, whose python is --kvpress-python or $COVE_KVPRESS_PYTHON (docs/kv-compression.md says how to create it).

Printed: next-line exact match (and as a share of the full cache's), token agreement with the full cache's greedy
choices, perplexity of the true continuation, needles found, KV bytes per token. The plot goes to docs/.

    .venv/bin/python benchmarks/kv_compression.py [--samples 24] [--needles 8] [--prompt-tokens 2000]
        [--parts research kvpress fast] [--kvpress-python .venv-kvpress/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from cove.config import ModelConfig
from cove.inference.kv_memory import SETTINGS, kv_bytes
from cove.inference.local_model import LocalModel
from cove.inference.model_files import default_model_path
from cove.inference.research.kv_eval import Sample, Score, code_samples, evaluate_sample, needle_samples, score
from cove.inference.research.kv_policies import QUANT_POLICIES, TOKEN_POLICIES
from cove.inference.research.torch_gemma import TorchGemma

Key = tuple[str, float]
ROOT = Path(__file__).resolve().parent.parent
PARTS = ("research", "kvpress", "fast")
KVPRESS_SETUP = (
    "create kvpress's own virtualenv (docs/kv-compression.md, section kvpress):\n"
    "    python3 -m venv .venv-kvpress && .venv-kvpress/bin/pip install torch==2.13.0 kvpress gguf\n"
    "then pass --kvpress-python .venv-kvpress/bin/python or set COVE_KVPRESS_PYTHON to it"
)


def tokenizer(model: LocalModel) -> tuple[object, object]:
    pieces: dict[int, str] = {}

    def piece(token: int) -> str:
        if token not in pieces:
            pieces[token] = model.piece(token).decode("utf-8", "replace")
        return pieces[token]

    return (lambda text: model.tokenize(text)), piece


def research(samples: list[Sample], budgets: list[float]) -> dict[Key, Score]:
    model = TorchGemma.load()
    configs: list[Key] = [("full", 1.0)]
    configs += [(policy, budget) for policy in TOKEN_POLICIES for budget in budgets]
    configs += [(policy, 1.0) for policy in QUANT_POLICIES]
    totals: dict[Key, Score] = defaultdict(Score)
    for sample in tqdm(samples, desc="torch policies", unit="sample"):
        for key, result in evaluate_sample(model, sample, configs).items():
            totals[key].add(result)
    return totals


def fast_path(samples: list[Sample], model_path: Path) -> tuple[dict[str, Score], dict[str, float]]:
    """Next-line quality of llama.cpp's cache settings (the full-size f16 cache is the reference), and the seconds
    each spent evaluating the prompts and continuations."""
    totals: dict[str, Score] = {}
    seconds: dict[str, float] = {}
    references: dict[str, torch.Tensor] = {}
    for label, kv_type, swa_full in SETTINGS:
        model = LocalModel(model_path, ModelConfig(n_ctx=4096, n_batch=256, kv_type=kv_type, swa_full=swa_full))
        total = Score()
        seconds[label] = 0.0
        for sample in tqdm(samples, desc=label, unit="sample", leave=False):
            model.clear()
            began = time.perf_counter()
            model.prefill(sample.prompt)
            last = torch.from_numpy(model.logits().copy())
            model.decode(sample.continuation[:-1], all_logits=True)
            seconds[label] += time.perf_counter() - began
            rest = [torch.from_numpy(model.logits(i).copy()) for i in range(len(sample.continuation) - 1)]
            logits = torch.stack([last, *rest])
            references.setdefault(sample.name, logits.argmax(dim=-1))
            total.add(score(logits, sample, references[sample.name]))
        totals[label] = total
        model.close()
    return totals, seconds


def kvpress_side(
    samples: list[Sample], budgets: list[float], threads: int, model_path: Path, python: Path
) -> tuple[dict[Key, Score], dict[Key, Score], str]:
    """kvpress's presses on the same samples, run by `python`, the interpreter of kvpress's own virtualenv (kvpress
    pins transformers < 5.3)."""
    with tempfile.TemporaryDirectory() as tmp:
        given, taken = Path(tmp, "in.json"), Path(tmp, "out.json")
        given.write_text(json.dumps([vars(s) for s in samples]))
        budget_args = [str(b) for b in budgets]
        script = ROOT / "benchmarks" / "kvpress_side.py"
        command = [
            str(python),
            str(script),
            str(given),
            str(taken),
            "--threads",
            str(threads),
            "--gguf",
            str(model_path),
        ]
        done = subprocess.run([*command, "--budgets", *budget_args])
        if done.returncode != 0 or not taken.exists():
            return {}, {}, f"kvpress run failed (exit {done.returncode})"
        records = json.loads(taken.read_text())
    by_name = {s.name: s for s in samples}
    reference = {r["sample"]: torch.tensor(r["greedy"]) for r in records if r["press"] == "full"}
    totals: dict[Key, Score] = defaultdict(Score)
    needle_totals: dict[Key, Score] = defaultdict(Score)
    scopes = set()
    for r in records:
        sample = by_name[r["sample"]]
        greedy, truth = torch.tensor(r["greedy"]), torch.tensor(sample.continuation)
        right = greedy == truth
        result = Score([bool(right[a:b].all()) for a, b in sample.lines], int((greedy == reference[r["sample"]]).sum()),
                       len(truth), float(r["nll"]), tokens=len(sample.prompt) + len(truth))  # fmt: skip
        key = ("full" if r["press"] == "full" else f"kvpress:{r['press']}", float(r["budget"]))
        (needle_totals if sample.needle else totals)[key].add(result)
        scopes.add(r.get("scope", "?"))
    return totals, needle_totals, f"kvpress presses compressed: {', '.join(sorted(scopes))}"


def needles_found(results: dict[Key, Score], needles: list[Sample], key: Key) -> str:
    return f"{sum(results[key].lines)}/{len(needles)}" if needles else "-"


def print_research(code: dict[Key, Score], needle: dict[Key, Score], needles: list[Sample], title: str) -> list[str]:
    full = code[("full", 1.0)]
    full_bytes = full.bytes_held
    header = (
        f"{'policy':<22}{'budget':>7}{'bytes/tok':>10}{'of full':>8}{'exact':>7}{'vs full':>8}{'agree':>7}{'ppl':>7}"
    )
    lines = [title, header + f"{'needle':>8}"]
    for key in code:
        s = code[key]
        # kvpress reports tokens held, not bytes: its rows leave the memory columns empty.
        per_token = f"{s.bytes_held / max(1, s.tokens):.0f}" if s.bytes_held else "-"
        share = f"{s.bytes_held / full_bytes:.1%}" if s.bytes_held else "-"
        budget = f"{key[1]:.1%}" if key[1] < 1 else "-"
        lines.append(
            f"{key[0]:<22}{budget:>7}{per_token:>10}{share:>8}{s.exact:>7.1%}"
            f"{s.exact / max(full.exact, 1e-9):>8.1%}"
            f"{s.agreement:>7.1%}{s.perplexity:>7.2f}{needles_found(needle, needles, key):>8}"
        )
    return lines


def plot(code: dict[Key, Score], needle: dict[Key, Score], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = code[("full", 1.0)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    policies = sorted({p for p, _ in code if p != "full"})
    for policy in policies:
        keys = sorted((k for k in code if k[0] == policy), key=lambda k: k[1])
        xs = [100 * code[k].bytes_held / full.bytes_held if code[k].bytes_held else 100 * k[1] for k in keys]
        marker = "s" if policy in QUANT_POLICIES else "o"
        left.plot(xs, [100 * code[k].exact / max(full.exact, 1e-9) for k in keys], marker=marker, label=policy)
        if needle:
            right.plot(xs, [100 * needle[k].exact for k in keys], marker=marker, label=policy)
    left.axhline(97, color="grey", linestyle="--", linewidth=0.8)
    left.set(xlabel="KV bytes held on global layers (% of full)", ylabel="next-line exact match (% of full cache's)",
             title="Next-line exact match vs memory")  # fmt: skip
    right.set(xlabel="KV bytes held on global layers (% of full)", ylabel="needles found (%)", title="Needle test")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--needles", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    parser.add_argument("--continuation", type=int, default=64)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.25, 0.125])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "kv-compression.png")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        help="what to run (default: all three, kvpress only when its python is given)",
    )
    parser.add_argument(
        "--kvpress-python",
        type=Path,
        default=os.environ.get("COVE_KVPRESS_PYTHON") or None,
        metavar="PATH",
        help="python of kvpress's own virtualenv (default: $COVE_KVPRESS_PYTHON)",
    )
    args = parser.parse_args(argv)
    if args.parts is None:
        args.parts = [part for part in PARTS if part != "kvpress" or args.kvpress_python]
    if "kvpress" in args.parts:
        if args.kvpress_python is None:
            parser.error(
                "--parts kvpress needs kvpress's python, and neither --kvpress-python nor COVE_KVPRESS_PYTHON is "
                f"given: {KVPRESS_SETUP}"
            )
        if not args.kvpress_python.exists():
            parser.error(f"no python at {args.kvpress_python}: {KVPRESS_SETUP}")
    torch.set_num_threads(args.threads)

    model_path = default_model_path()
    vocab = LocalModel(model_path, ModelConfig(n_ctx=512, n_batch=64))
    tokenize, piece = tokenizer(vocab)
    bos = vocab.bos
    samples = code_samples(tokenize, piece, bos, args.samples, args.prompt_tokens, args.continuation)  # type: ignore[arg-type]
    needles = needle_samples(tokenize, piece, bos, args.needles, args.prompt_tokens)  # type: ignore[arg-type]
    shape = vocab.kv_shape
    vocab.close()
    lines_total = sum(len(s.lines) for s in samples)
    print(f"{len(samples)} code samples ({lines_total} lines scored), {len(needles)} needles, "
          f"prompts of ~{args.prompt_tokens} tokens, continuation {args.continuation} tokens")  # fmt: skip

    report: list[str] = []
    if "research" in args.parts:
        code = research(samples, args.budgets)
        needle = research(needles, args.budgets) if needles else {}
        report += print_research(code, needle, needles, "research path (torch), global layers compressed:")
        full_needles = needle[("full", 1.0)].exact if needle else 0.0
        report.append(f"needles found by the full cache: {full_needles:.0%}")
        plot(code, needle, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    if "kvpress" in args.parts:
        pressed, pressed_needles, why = kvpress_side(
            samples + needles, args.budgets, args.threads, model_path, args.kvpress_python
        )
        report.append(why)
        if pressed:
            report += print_research(
                pressed, pressed_needles, needles, "kvpress on the same samples (transformers' Gemma 3):"
            )
    if "fast" in args.parts:
        settings, seconds = fast_path(samples, model_path)
        base, base_seconds = settings[SETTINGS[0][0]], seconds[SETTINGS[0][0]]
        report.append("fast path (llama.cpp), next line against the f16 full-size cache; time relative to it:")
        header = f"{'setting':<40}{'MiB @32K':>9}{'exact':>7}{'points':>8}{'agree':>7}{'ppl':>7}{'time':>7}"
        report.append(header)
        for label, kv_type, swa_full in SETTINGS:
            s = settings[label]
            mib = kv_bytes(shape, 32_768, kv_type, swa_full) / 2**20
            points = 100 * (s.exact - base.exact)
            report.append(
                f"{label:<40}{mib:>9.1f}{s.exact:>7.1%}{points:>+8.1f}{s.agreement:>7.1%}{s.perplexity:>7.2f}"
                f"{seconds[label] / base_seconds:>6.2f}x"
            )
    print("\n".join(report))


if __name__ == "__main__":
    main()
