"""KV-cache compression on real code: quality against memory held, for every policy and budget, in one run.

Samples are long prompts from Python standard library modules (nobody here wrote them) cut at a line start, scored on
the tokens that really follow; needle samples define a value at several depths of a ~2,000-token prompt and ask for
it at its end. Modules come from a set: `held-out` (no policy was tuned on them; the default), `tuning` (the modules
earlier rounds tuned on), `all`, or names; `--seed` picks modules' order and cut points. Two paths, each against its
own full cache measured in the same run:

  research path (torch, inference/research/): the prompt is prefilled once with the full cache and compressed by
  each policy to a budget (a share of the bytes the full cache holds at its peak); then the continuation runs one
  token at a time through every policy's cache together, each trimming itself after every token as a user's
  decoding would; a policy is charged for the most bytes its global layers held at once. KIVI keeps every token in
  4 or 2 bits; `X+kivi4` is X's selection over KIVI-4 entries.

  fast path (llama.cpp, what users run): f16 full-size, SWA-aware, q8_0 and q4_0 caches on the same samples.

  kvpress (optional): NVIDIA's presses on the same samples, run by benchmarks/kvpress_side.py in a virtualenv of its
  own, whose python is --kvpress-python or $COVE_KVPRESS_PYTHON (docs/kv-compression.md says how to create it).

Printed: next-line exact match and its share of the full cache's with a 90% bootstrap interval (samples resampled,
paired), token agreement with the full cache's greedy choices, perplexity of the true continuation, needles found
at each depth, tokens held and peak KV bytes per token. The plot (bytes on the x-axis, both metrics) goes to docs/.

    .venv/bin/python benchmarks/kv_compression.py [--samples 24] [--needles 4] [--depths 0.1 0.5 0.9]
        [--modules held-out] [--seed 0] [--budgets 0.5 0.25 0.125] [--policies ...]
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
from cove.inference.model.kv_memory import SETTINGS, KvShape, kv_bytes
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import default_model_path
from cove.inference.research.kv_eval import (
    Sample,
    Score,
    bootstrap_ratio,
    code_samples,
    evaluate_sample,
    needle_samples,
    score,
    score_choices,
)
from cove.inference.research.kv_policies import COMBINED_POLICIES, POLICIES, QUANT_POLICIES, TOKEN_POLICIES
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


#: About the share of the full cache's bytes KIVI-4 holds with every token of a 2,000-token prompt.
KIVI4_SHARE = 0.36


def research_configs(budgets: list[float], policies: list[str]) -> list[Key]:
    """full, every token selection at every budget (a share of the full cache's peak bytes; selections over KIVI-4
    entries only below KIVI-4's own share), KIVI alone."""
    configs: list[Key] = [("full", 1.0)]
    configs += [(p, b) for p in policies if p in TOKEN_POLICIES for b in budgets]
    # Above KIVI-4's own share (~36% of full's bytes at 2K tokens) a selection over its entries keeps every token.
    configs += [(p, b) for p in policies if p in COMBINED_POLICIES for b in budgets if b < KIVI4_SHARE]
    configs += [(p, 1.0) for p in policies if p in QUANT_POLICIES]
    return configs


def research(samples: list[Sample], configs: list[Key], desc: str) -> dict[Key, list[Score]]:
    """Each config's score on each sample, in sample order."""
    model = TorchGemma.load()
    per_sample: dict[Key, list[Score]] = defaultdict(list)
    for sample in tqdm(samples, desc=desc, unit="sample"):
        for key, result in evaluate_sample(model, sample, configs).items():
            per_sample[key].append(result)
    return per_sample


def total(scores: list[Score]) -> Score:
    summed = Score()
    for each in scores:
        summed.add(each)
    return summed


def fast_path(samples: list[Sample], model_path: Path) -> tuple[dict[str, list[Score]], dict[str, float]]:
    """Next-line quality of llama.cpp's cache settings on each sample (the full-size f16 cache is the reference),
    and the seconds each spent evaluating the prompts and continuations."""
    scores: dict[str, list[Score]] = defaultdict(list)
    seconds: dict[str, float] = {}
    references: dict[str, torch.Tensor] = {}
    for label, kv_type, swa_full in SETTINGS:
        model = LocalModel(model_path, ModelConfig(n_ctx=4096, n_batch=256, kv_type=kv_type, swa_full=swa_full))
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
            scores[label].append(score(logits, sample, references[sample.name]))
        model.close()
    return scores, seconds


def kvpress_side(
    samples: list[Sample], budgets: list[float], threads: int, model_path: Path, python: Path
) -> tuple[dict[Key, list[Score]], dict[Key, list[Score]], str]:
    """kvpress's presses on the same samples, run by `python`, the interpreter of kvpress's own virtualenv (kvpress
    pins transformers < 5.3); per config, the scores of the code samples and of the needles, in sample order."""
    with tempfile.TemporaryDirectory() as tmp:
        given, taken = Path(tmp, "in.json"), Path(tmp, "out.json")
        given.write_text(json.dumps([vars(s) for s in samples]))
        script = ROOT / "benchmarks" / "kvpress_side.py"
        command = [str(python), str(script), str(given), str(taken), "--threads", str(threads)]
        done = subprocess.run([*command, "--gguf", str(model_path), "--budgets", *[str(b) for b in budgets]])
        if done.returncode != 0 or not taken.exists():
            return {}, {}, f"kvpress run failed (exit {done.returncode})"
        records = json.loads(taken.read_text())
    by_name = {s.name: s for s in samples}
    reference = {r["sample"]: torch.tensor(r["greedy"]) for r in records if r["press"] == "full"}
    scored: dict[Key, dict[str, Score]] = defaultdict(dict)
    scopes = set()
    for r in records:
        sample = by_name[r["sample"]]
        key = ("full" if r["press"] == "full" else f"kvpress:{r['press']}", float(r["budget"]))
        nll = torch.tensor([float(r["nll"])])  # kvpress_side sums it
        scored[key][sample.name] = score_choices(torch.tensor(r["greedy"]), nll, sample, reference[r["sample"]])
        scopes.add(r.get("scope", "?"))
    code = {k: [v[s.name] for s in samples if not s.needle] for k, v in scored.items()}
    needle = {k: [v[s.name] for s in samples if s.needle] for k, v in scored.items()}
    return code, needle, f"kvpress presses compressed: {', '.join(sorted(scopes))}"


def print_research(code: dict[Key, list[Score]], needle: dict[Key, list[Score]], needles: list[Sample],
                   title: str) -> list[str]:  # fmt: skip
    """One row per config: memory at its peak, next-line exact match (and its share of full's, with a 90% bootstrap
    interval over samples), agreement, perplexity, needles found at each depth."""
    full_scores = code[("full", 1.0)]
    full = total(full_scores)
    depths = sorted({s.depth for s in needles})
    needle_header = "".join(f"{f'@{d:.0%}':>6}" for d in depths)
    header = (
        f"{'policy':<18}{'budget':>7}{'tokens':>7}{'B/tok':>6}{'of full':>8}{'exact':>7}{'vs full':>8}"
        f"{'90% interval':>16}{'agree':>7}{'ppl':>6}{needle_header}{'needles':>8}"
    )
    lines = [title, header]
    for key, scores in code.items():
        s = total(scores)
        ratio, low, high = bootstrap_ratio(scores, full_scores)
        budget = f"{key[1]:.1%}" if key[1] < 1 else "-"
        # kvpress reports tokens held, not bytes: its rows leave the memory columns empty.
        memory = (
            f"{s.held_tokens / max(1, full.held_tokens):>7.0%}{s.peak_bytes / max(1, s.tokens):>6.0f}"
            f"{s.peak_bytes / max(1, full.peak_bytes):>8.1%}"
            if s.peak_bytes
            else f"{'-':>7}{'-':>6}{'-':>8}"
        )
        found = ""
        if needles and key in needle:
            for depth in depths:
                hits = [r.exact for r, n in zip(needle[key], needles, strict=True) if n.depth == depth]
                found += f"{f'{sum(hits):.0f}/{len(hits)}':>6}"
            found += f"{f'{sum(r.exact for r in needle[key]):.0f}/{len(needles)}':>8}"
        lines.append(
            f"{key[0]:<18}{budget:>7}{memory}{s.exact:>7.1%}{ratio:>8.1%}{f'{low:.1%}-{high:.1%}':>16}"
            f"{s.agreement:>7.1%}{s.perplexity:>6.2f}{found}"
        )
    return lines


def save(path: Path, code: dict[Key, list[Score]], needle: dict[Key, list[Score]], needles: list[Sample]) -> None:
    """Scores per sample, so that runs of the same samples with different policies print as one table."""
    rows = {"code": code, "needle": needle}
    payload = {
        part: [{"policy": k[0], "budget": k[1], "scores": [vars(s) for s in v]} for k, v in scores.items()]
        for part, scores in rows.items()
    }
    payload["needles"] = [{"name": s.name, "depth": s.depth} for s in needles]
    path.write_text(json.dumps(payload))


def combine(paths: list[Path]) -> tuple[dict[Key, list[Score]], dict[Key, list[Score]], list[Sample]]:
    """The scores saved by several runs, full's from the first."""
    code: dict[Key, list[Score]] = {}
    needle: dict[Key, list[Score]] = {}
    needles: list[Sample] = []
    for path in paths:
        payload = json.loads(path.read_text())
        for part, into in (("code", code), ("needle", needle)):
            for row in payload[part]:
                into.setdefault((row["policy"], row["budget"]), [Score(**s) for s in row["scores"]])
        needles = needles or [Sample(n["name"], [], [], [], needle=True, depth=n["depth"]) for n in payload["needles"]]
    return code, needle, needles


def plot(code: dict[Key, list[Score]], needle: dict[Key, list[Score]], path: Path) -> None:
    """Exact match (share of full's, with intervals) and needles found, against the peak bytes held."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full_scores = code[("full", 1.0)]
    full = total(full_scores)
    full_needles = sum(s.exact for s in needle.get(("full", 1.0), []))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    for index, policy in enumerate(sorted({p for p, _ in code if p != "full"})):
        keys = sorted((k for k in code if k[0] == policy), key=lambda k: total(code[k]).peak_bytes)
        xs = [100 * total(code[k]).peak_bytes / full.peak_bytes for k in keys]
        bounds = [bootstrap_ratio(code[k], full_scores) for k in keys]
        ys = [100 * b[0] for b in bounds]
        errors = [[100 * (b[0] - b[1]) for b in bounds], [100 * (b[2] - b[0]) for b in bounds]]
        color = colors[index % len(colors)]
        style = {"marker": "s" if "kivi" in policy else "o", "label": policy, "capsize": 2, "linewidth": 1}
        left.errorbar(xs, ys, yerr=errors, color=color, **style)
        if needle and full_needles:
            found = [100 * sum(s.exact for s in needle[k]) / full_needles for k in keys]
            right.plot(xs, found, marker=style["marker"], label=policy, linewidth=1, color=color)
    left.axhline(97, color="grey", linestyle="--", linewidth=0.8)
    left.axvline(25, color="grey", linestyle=":", linewidth=0.8)
    right.axvline(25, color="grey", linestyle=":", linewidth=0.8)
    left.set(xlabel="peak KV bytes on global layers (% of full)", ylabel="next-line exact match (% of full's, 90% CI)",
             title="Next-line exact match vs memory")  # fmt: skip
    right.set(xlabel="peak KV bytes on global layers (% of full)", ylabel="needles found (% of those full finds)",
              title="Needles at every depth")  # fmt: skip
    for axis in (left, right):
        axis.grid(alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--needles", type=int, default=4, help="needle samples per depth")
    parser.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9], help="where needles are defined")
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    parser.add_argument("--continuation", type=int, default=64)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.25, 0.125], help="shares of full's bytes")
    parser.add_argument("--policies", nargs="+", default=[p for p in POLICIES if p != "full"], choices=POLICIES[1:])
    parser.add_argument("--modules", default="held-out", help="tuning | held-out | all | comma-separated names")
    parser.add_argument("--seed", type=int, default=0, help="which modules and cut points")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "kv-compression.png")
    parser.add_argument("--save", type=Path, help="write the research path's scores per sample to this JSON file")
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        help="print and plot the research scores saved by runs of the same samples (--save), as one table",
    )
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
    if args.combine:
        code, needle, needles = combine(args.combine)
        print("\n".join(print_research(code, needle, needles, "research path (torch), global layers compressed:")))
        plot(code, needle, args.plot)
        return
    torch.set_num_threads(args.threads)
    modules = args.modules if args.modules in ("tuning", "held-out", "all") else args.modules.split(",")

    model_path = default_model_path()
    vocab = LocalModel(model_path, ModelConfig(n_ctx=512, n_batch=64))
    tokenize, piece = tokenizer(vocab)
    bos = vocab.bos
    samples = code_samples(tokenize, piece, bos, args.samples, args.prompt_tokens, args.continuation,  # type: ignore[arg-type]
                           seed=args.seed, modules=modules)  # fmt: skip
    needles = needle_samples(tokenize, piece, bos, args.needles, args.prompt_tokens,  # type: ignore[arg-type]
                             seed=args.seed + 1, modules=modules, depths=args.depths)  # fmt: skip
    vocab.close()
    lines_total = sum(len(s.lines) for s in samples)
    names = sorted({s.name.partition("@")[0] for s in samples})
    print(f"{len(samples)} code samples ({lines_total} lines scored) from {len(names)} modules ({args.modules}, "
          f"seed {args.seed}), {len(needles)} needles at depths {', '.join(f'{d:.0%}' for d in args.depths)}, "
          f"prompts of ~{args.prompt_tokens} tokens, continuation {args.continuation} tokens")  # fmt: skip

    report: list[str] = []
    if "research" in args.parts:
        configs = research_configs(args.budgets, args.policies)
        code = research(samples, configs, "torch policies, code")
        needle = research(needles, configs, "torch policies, needles") if needles else {}
        report += print_research(code, needle, needles, "research path (torch), global layers compressed:")
        full_needles = sum(s.exact for s in needle[("full", 1.0)]) if needle else 0.0
        report.append(f"needles found by the full cache: {full_needles:.0f}/{len(needles)}")
        plot(code, needle, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
        if args.save:
            save(args.save, code, needle, needles)
    if "kvpress" in args.parts:
        pressed, pressed_needles, why = kvpress_side(
            samples + needles, args.budgets, args.threads, model_path, args.kvpress_python
        )
        report.append(why)
        if pressed:
            title = "kvpress on the same samples (transformers' Gemma 3):"
            report += print_research(pressed, pressed_needles, needles, title)
    if "fast" in args.parts:
        settings, seconds = fast_path(samples, model_path)
        base_label = SETTINGS[0][0]
        base, base_seconds = settings[base_label], seconds[base_label]
        report.append("fast path (llama.cpp), next line against the f16 full-size cache; time relative to it:")
        header = f"{'setting':<40}{'MiB @32K':>9}{'exact':>7}{'vs f16':>8}{'90% interval':>16}{'agree':>7}{'ppl':>7}"
        report.append(header + f"{'time':>7}")
        for label, kv_type, swa_full in SETTINGS:
            s = total(settings[label])
            ratio, low, high = bootstrap_ratio(settings[label], base)
            mib = kv_bytes(shape_of(model_path), 32_768, kv_type, swa_full) / 2**20
            report.append(
                f"{label:<40}{mib:>9.1f}{s.exact:>7.1%}{ratio:>8.1%}{f'{low:.1%}-{high:.1%}':>16}"
                f"{s.agreement:>7.1%}{s.perplexity:>7.2f}{seconds[label] / base_seconds:>6.2f}x"
            )
    print("\n".join(report))


def shape_of(model_path: Path) -> KvShape:
    model = LocalModel(model_path, ModelConfig(n_ctx=512, n_batch=64))
    try:
        return model.kv_shape
    finally:
        model.close()


if __name__ == "__main__":
    main()
