"""Next-line quality of KV-cache settings on the same samples, with a paired bootstrap interval of the difference.

The question is whether a setting can be the default: for every sample, every setting (`--kv-settings`, the first
is the reference: today's default) prefills the same prompt with llama.cpp and runs the continuation that really
follows teacher-forced, the settings taking turns sample by sample. Scores come from
`cove.inference.research.kv_eval.score`, as in kv_compression.py's fast path: a line is an exact match when the greedy
choice is right at every one of its tokens; agreement is with the reference's greedy choices.

Two parts:

  short  `--samples` prompts of ~`--prompt-tokens` tokens from stdlib modules, `--continuation` tokens after them,
         at the default context
  long   `--long-samples` prompts of ~`--long-prompt-tokens` tokens (the longest stdlib modules) with
         `--long-continuation` tokens after them, at a 32K context: long enough that the sliding layers' window is
         a small part of what the global layers hold

Printed per part: exact match, token agreement, perplexity and seconds per setting; the difference of each setting's
exact match from the reference's with its 90% interval (samples resampled with replacement, both settings together),
and the lines only one of the two got right.

    .venv/bin/python benchmarks/kv_default.py [--kv-settings f16:full q8_0:swa] [--samples 64] [--long-samples 6]
        [--parts short long]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field

import torch
from kv_typing import KvSetting  # benchmarks/, beside this script
from tqdm import tqdm

from cove.config import ModelConfig
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import locate_model
from cove.inference.research.kv_eval import Sample, Score, code_samples, score

#: Resamples of the paired bootstrap.
RESAMPLES = 10_000


@dataclass
class SettingScores:
    """One setting's score on each sample, and the seconds it spent on them."""

    per_sample: list[Score] = field(default_factory=list)
    seconds: float = 0.0

    def total(self) -> Score:
        total = Score()
        for result in self.per_sample:
            total.add(result)
        return total


def load(setting: KvSetting, n_ctx: int, threads: int) -> LocalModel:
    config = ModelConfig(n_ctx=n_ctx, n_threads=threads, kv_type=setting.kv_type, swa_full=setting.swa_full)
    return LocalModel(locate_model(config), config)


def teacher_forced(model: LocalModel, sample: Sample) -> torch.Tensor:
    """Logits predicting each continuation token ([C, V]) after a fresh prefill of the prompt."""
    model.clear()
    model.prefill(sample.prompt)
    logits = [torch.from_numpy(model.logits().copy())]
    rest = sample.continuation[:-1]
    for start in range(0, len(rest), model.n_batch):
        chunk = rest[start : start + model.n_batch]
        model.decode(chunk, all_logits=True)
        logits += [torch.from_numpy(model.logits(i).copy()) for i in range(len(chunk))]
    return torch.stack(logits)


def compare(models: dict[str, LocalModel], samples: list[Sample], desc: str) -> dict[str, SettingScores]:
    """Every sample through every model, the order alternating; the first model's greedy choices are the reference."""
    names = list(models)
    results = {name: SettingScores() for name in names}
    for index, sample in enumerate(tqdm(samples, desc=desc, unit="sample", file=sys.stderr, leave=False)):
        logits: dict[str, torch.Tensor] = {}
        for name in names if index % 2 == 0 else reversed(names):
            began = time.perf_counter()
            logits[name] = teacher_forced(models[name], sample)
            results[name].seconds += time.perf_counter() - began
        reference = logits[names[0]].argmax(dim=-1)
        for name in names:
            results[name].per_sample.append(score(logits[name], sample, reference))
    return results


def paired_interval(reference: list[Score], other: list[Score], seed: int = 0) -> tuple[float, float, float]:
    """The difference of exact match (other - reference, in points) and its 90% paired bootstrap interval: samples
    are resampled with replacement, each keeping both settings' lines."""
    right_ref = [sum(s.lines) for s in reference]
    right_other = [sum(s.lines) for s in other]
    counts = [len(s.lines) for s in reference]

    def difference(picked: list[int]) -> float:
        lines = sum(counts[i] for i in picked)
        return 100 * (sum(right_other[i] for i in picked) - sum(right_ref[i] for i in picked)) / max(1, lines)

    rng = random.Random(seed)
    n = len(reference)
    spread = sorted(difference([rng.randrange(n) for _ in range(n)]) for _ in range(RESAMPLES))
    return difference(list(range(n))), spread[int(0.05 * RESAMPLES)], spread[int(0.95 * RESAMPLES) - 1]


def report(results: dict[str, SettingScores], title: str) -> None:
    names = list(results)
    reference = results[names[0]]
    print(f"\n{title}")
    print(f"{'setting':<10}{'exact':>8}{'agree':>8}{'ppl':>7}{'seconds':>9}{'time x':>8}")
    for name, result in results.items():
        total = result.total()
        print(
            f"{name:<10}{total.exact:>8.1%}{total.agreement:>8.1%}{total.perplexity:>7.2f}{result.seconds:>9.1f}"
            f"{result.seconds / reference.seconds:>7.2f}x"
        )
    for name in names[1:]:
        diff, low, high = paired_interval(reference.per_sample, results[name].per_sample)
        pairs = [
            (a, b)
            for ref, other in zip(reference.per_sample, results[name].per_sample, strict=True)
            for a, b in zip(ref.lines, other.lines, strict=True)
        ]
        print(
            f"{name} - {names[0]}: {diff:+.2f} points of exact match, 90% interval [{low:+.2f}, {high:+.2f}] (paired "
            f"bootstrap over {len(reference.per_sample)} samples, {RESAMPLES} resamples); lines right only with "
            f"{names[0]}: {sum(a and not b for a, b in pairs)}, only with {name}: {sum(b and not a for a, b in pairs)}"
        )


def samples_for(model: LocalModel, count: int, prompt_tokens: int, continuation: int, seed: int) -> list[Sample]:
    pieces: dict[int, str] = {}

    def piece(token: int) -> str:
        if token not in pieces:
            pieces[token] = model.piece(token).decode("utf-8", "replace")
        return pieces[token]

    return code_samples(tokenize=model.tokenize, piece=piece, bos=model.bos, count=count, prompt_tokens=prompt_tokens,
                        continuation=continuation, seed=seed)  # fmt: skip


@dataclass(frozen=True)
class Part:
    """Samples of one prompt length, and the context the models get for them."""

    name: str
    n_ctx: int
    samples: int
    prompt_tokens: int
    continuation: int


def run_part(settings: list[KvSetting], part: Part, threads: int, seed: int) -> None:
    models = {setting.name: load(setting, part.n_ctx, threads) for setting in settings}
    samples = samples_for(next(iter(models.values())), part.samples, part.prompt_tokens, part.continuation, seed)
    # Prompts run from a line start after the BOS, so they are a little shorter than asked.
    prompt_mean = sum(len(s.prompt) for s in samples) / len(samples)
    results = compare(models, samples, part.name)
    lines = len(results[settings[0].name].total().lines)
    report(results, f"{part.name}: {len(samples)} samples, prompts of {prompt_mean:.0f} tokens on average, "
                    f"{part.continuation}-token continuations, {lines} lines scored, n_ctx {part.n_ctx}")  # fmt: skip
    for model in models.values():
        model.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kv-settings", nargs="+", type=KvSetting.parse, default=["f16:full", "q8_0:swa"],
                        help="KV_TYPE:full or KV_TYPE:swa; the first is the reference")  # fmt: skip
    parser.add_argument("--parts", nargs="+", choices=["short", "long"], default=["short", "long"])
    parser.add_argument("--samples", type=int, default=64, help="short: samples")
    parser.add_argument("--prompt-tokens", type=int, default=2000, help="short: tokens of each prompt")
    parser.add_argument("--continuation", type=int, default=64, help="short: tokens scored after each prompt")
    parser.add_argument("--n-ctx", type=int, default=ModelConfig().n_ctx, help="short: context of every model")
    parser.add_argument("--long-samples", type=int, default=6, help="long: samples")
    parser.add_argument("--long-prompt-tokens", type=int, default=16000, help="long: tokens of each prompt")
    parser.add_argument("--long-continuation", type=int, default=256, help="long: tokens scored after each prompt")
    parser.add_argument("--long-n-ctx", type=int, default=32768, help="long: context of every model")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of every model (0: one per core)")
    parser.add_argument("--seed", type=int, default=0, help="which places of the modules")
    args = parser.parse_args(argv)
    settings = [s if isinstance(s, KvSetting) else KvSetting.parse(s) for s in args.kv_settings]
    parts = [
        Part("short", args.n_ctx, args.samples, args.prompt_tokens, args.continuation),
        Part("long", args.long_n_ctx, args.long_samples, args.long_prompt_tokens, args.long_continuation),
    ]
    for part in parts:
        if part.name in args.parts:
            run_part(settings, part, args.threads, args.seed)


if __name__ == "__main__":
    main()
