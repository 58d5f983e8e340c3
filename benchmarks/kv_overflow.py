"""llama.cpp's overflow policies on prompts longer than the context: what `[model] overflow = "structure"` keeps of a
long prompt against what StreamingLLM (`overflow = "streaming"`) keeps, and against the whole prompt.

    .venv/bin/python benchmarks/kv_overflow.py [--samples 20] [--prompt-tokens 4000] [--continuation 128]
        [--budgets 0.5 0.25] [--by-indentation] [--threads 1]

(about 15 minutes on two idle cores; where other jobs share them, --threads 1 is several times faster than 2)

Samples: prompts of about --prompt-tokens ending at a random line start of a Python standard library module (none of
them written here, none of them the modules the structure ranks were tuned on), scored on the --continuation tokens
that really follow. Each budget is a share of the prompt's tokens: the context is sized so that the structure policy
keeps exactly that share (it cuts a long prompt to three quarters of the context, leaving the rest for what comes
next), and the streaming row gets the same context, so the same KV memory (it ends its prefill holding between three
quarters and all of it). "prompt's end" keeps as many tokens as structure, the latest (and BOS): what cutting the
prompt to the context, as completions did before `overflow = "structure"`, gives. `full` has a context that holds
everything. The continuation is teacher-forced in one batch after each prompt, as benchmarks/kv_compression.py does
for the fast path.

Printed per row: next-line exact match (a line of 4+ visible characters whose every token is the greedy choice), its
share of full's with a 90% bootstrap interval over samples (paired: the same samples resampled for both), token
agreement with full's greedy choices, perplexity of the true continuation, the prompt tokens held and evaluated (as
a share of the prompt), and the prefill time (ranking included) against full's.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cove.config import ModelConfig
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import default_model_path
from cove.inference.model.overflow import KEEP_SHARE

#: Long modules of the standard library, none of them those the structure ranks were checked on.
MODULES = (
    "typing", "subprocess", "threading", "socket", "ssl", "http.client", "http.server", "urllib.request", "mailbox",
    "xml.etree.ElementTree", "pickle", "shutil", "tempfile", "gettext", "locale", "random", "asyncio.base_events",
    "asyncio.tasks", "concurrent.futures._base", "multiprocessing.pool", "ipaddress", "tokenize", "dis", "traceback",
    "pdb", "doctest", "unittest.case", "unittest.mock", "platform", "logging", "email._header_value_parser",
    "imaplib", "optparse", "statistics", "functools", "collections",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    name: str
    prompt: list[int]
    continuation: list[int]
    #: [start, end) spans of `continuation` scored as lines.
    lines: list[tuple[int, int]]


@dataclass
class Row:
    """One setting's results, sample by sample (so that rows can be compared on resampled samples)."""

    exact: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    agreed: int = 0
    predicted: int = 0
    nll: float = 0.0
    held: list[float] = field(default_factory=list)
    evaluated: list[float] = field(default_factory=list)
    seconds: float = 0.0


def module_text(name: str) -> str:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    return Path(spec.origin).read_text(encoding="utf-8")


def code_samples(
    tokenize: Callable[[str], list[int]], piece: Callable[[int], str], bos: int, count: int, prompt_tokens: int,
    continuation: int, seed: int = 0,
) -> list[Sample]:  # fmt: skip
    """`count` samples: up to `prompt_tokens` before a random line start, and the `continuation` tokens after it;
    `seed` picks the modules (the next `count` of the list) and the cut points."""
    rng = random.Random(seed)
    texts = {name: tokenize(module_text(name)) for name in MODULES}
    modules = [name for name, tokens in texts.items() if len(tokens) > prompt_tokens + continuation + 32]
    samples = []
    for index in range(count):
        name = modules[(index + seed * count) % len(modules)]
        tokens = texts[name]
        cuts = [i + 1 for i in range(prompt_tokens, len(tokens) - continuation) if "\n" in piece(tokens[i])]
        cut = rng.choice(cuts)
        first = next(i + 1 for i in range(cut - prompt_tokens, cut) if "\n" in piece(tokens[i]))
        rest = tokens[cut : cut + continuation]
        samples.append(Sample(f"{name}@{cut}", [bos, *tokens[first:cut]], rest, line_spans(rest, piece)))
    return samples


def line_spans(tokens: Sequence[int], piece: Callable[[int], str]) -> list[tuple[int, int]]:
    """The whole lines of `tokens` with at least 4 visible characters."""
    spans, begin = [], 0
    for i, token in enumerate(tokens):
        if "\n" in piece(token):
            if len("".join(piece(t) for t in tokens[begin : i + 1]).strip()) >= 4:
                spans.append((begin, i + 1))
            begin = i + 1
    return spans


@dataclass(frozen=True)
class Setting:
    label: str
    n_ctx: int
    overflow: str
    #: The grammar that ranks the prompt (structure only; None: by indentation).
    language: str | None = None
    #: Evaluate only BOS and the prompt's last `cut` - 1 tokens.
    cut: int | None = None


class CountedModel:
    """A model whose evaluated tokens are counted (the prompt tokens a prefill really evaluates)."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model
        self.evaluated = 0
        decode = model.decode

        def counted(tokens: Sequence[int], all_logits: bool = False, logits: bool = True) -> None:
            self.evaluated += len(tokens)
            decode(tokens, all_logits, logits)

        model.decode = counted  # type: ignore[method-assign]


def run_sample(
    setting: Setting, counted: CountedModel, sample: Sample, row: Row, reference: list[int] | None
) -> list[int]:
    """Prefill the sample's prompt (timed), teacher-force its continuation, add the scores to `row`; returns the
    greedy choices (the reference for the other settings when `reference` is None)."""
    model = counted.model
    model.clear()
    counted.evaluated = 0
    began = time.perf_counter()
    cut = setting.cut
    prompt = sample.prompt if cut is None else [sample.prompt[0], *sample.prompt[len(sample.prompt) - cut + 1 :]]
    model.prefill(prompt, language=setting.language)
    row.seconds += time.perf_counter() - began
    row.evaluated.append(counted.evaluated / len(sample.prompt))
    row.held.append(len(model.tokens) / len(sample.prompt))
    greedy = [0] * len(sample.continuation)
    greedy[0], nll = choice_and_loss(model.logits(), sample.continuation[0])
    model.decode(sample.continuation[:-1], all_logits=True)
    for i, truth in enumerate(sample.continuation[1:]):
        greedy[i + 1], loss = choice_and_loss(model.logits(i), truth)
        nll += loss
    expected = greedy if reference is None else reference
    right = [g == t for g, t in zip(greedy, sample.continuation, strict=True)]
    row.exact.append(sum(all(right[a:b]) for a, b in sample.lines))
    row.lines.append(len(sample.lines))
    row.agreed += sum(g == e for g, e in zip(greedy, expected, strict=True))
    row.predicted += len(greedy)
    row.nll += nll
    return greedy


def choice_and_loss(logits: np.ndarray, truth: int) -> tuple[int, float]:
    """The greedy token and the true token's negative log-likelihood."""
    top = float(logits.max())
    log_total = top + math.log(float(np.exp(logits - top).sum()))
    return int(logits.argmax()), log_total - float(logits[truth])


def share_interval(row: Row, full: Row, rounds: int = 2000) -> tuple[float, float, float]:
    """Row's exact lines as a share of full's, with a 90% bootstrap interval over samples (paired)."""
    rng = random.Random(0)
    count = len(row.exact)
    shares = []
    for _ in range(rounds):
        picked = [rng.randrange(count) for _ in range(count)]
        base = sum(full.exact[i] for i in picked)
        shares.append(sum(row.exact[i] for i in picked) / base if base else 1.0)
    shares.sort()
    total = sum(full.exact)
    return sum(row.exact) / total if total else 1.0, shares[rounds // 20], shares[rounds - rounds // 20 - 1]


def report(settings: list[Setting], rows: dict[str, Row], samples: list[Sample]) -> str:
    full = rows["full"]
    lines = [
        f"{'setting':<26} {'n_ctx':>6} {'exact':>6} {'of full [90% interval]':>24} {'agree':>6} {'ppl':>5} "
        f"{'held':>6} {'evald':>6} {'prefill':>8}"
    ]
    for setting in settings:
        row = rows[setting.label]
        exact = sum(row.exact) / max(1, sum(row.lines))
        share, low, high = share_interval(row, full)
        interval = f"{share:6.1%} [{low:5.1%}, {high:6.1%}]"
        agree, perplexity = row.agreed / max(1, row.predicted), math.exp(row.nll / max(1, row.predicted))
        lines.append(
            f"{setting.label:<26} {setting.n_ctx:>6} {exact:6.1%} {interval:>24} {agree:6.1%} {perplexity:5.2f} "
            f"{np.mean(row.held):6.1%} {np.mean(row.evaluated):6.1%} {row.seconds / full.seconds:7.2f}x"
        )
    prompt = np.mean([len(s.prompt) for s in samples])
    head = (
        f"{len(samples)} samples ({sum(full.lines)} lines scored), prompts of {prompt:.0f} tokens on average, "
        f"continuation {len(samples[0].continuation)} tokens; "
        f"full's prefill {full.seconds / len(samples):.2f} s a sample"
    )
    return "\n".join([head, *lines])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--prompt-tokens", type=int, default=4000)
    parser.add_argument("--continuation", type=int, default=128)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.25], help="shares of the prompt kept")
    parser.add_argument("--by-indentation", action="store_true", help="also structure ranked without the grammar")
    parser.add_argument("--seed", type=int, default=1, help="0: the samples RECENT_SHARE was chosen on")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    path = default_model_path()

    def model(n_ctx: int, overflow: str) -> LocalModel:
        config = ModelConfig(n_ctx=n_ctx, n_batch=256, n_threads=args.threads, overflow=overflow)  # type: ignore[arg-type]
        return LocalModel(path, config)

    first = model(512, "error")
    pieces: dict[int, str] = {}

    def piece(token: int) -> str:
        if token not in pieces:
            pieces[token] = first.piece(token).decode("utf-8", "replace")
        return pieces[token]

    samples = code_samples(
        first.tokenize, piece, first.bos, args.samples, args.prompt_tokens, args.continuation, seed=args.seed
    )
    first.close()
    settings = [Setting("full", args.prompt_tokens + args.continuation + 64, "error")]
    for budget in args.budgets:
        n_ctx = math.ceil(budget * args.prompt_tokens / KEEP_SHARE)
        settings += [Setting(f"streaming {budget:.0%}", n_ctx, "streaming")]
        settings += [Setting(f"structure {budget:.0%}", n_ctx, "structure", "python")]
        settings += [Setting(f"prompt's end {budget:.0%}", n_ctx, "error", cut=int(n_ctx * KEEP_SHARE))]
        if args.by_indentation:
            settings.append(Setting(f"structure {budget:.0%}, indentation", n_ctx, "structure"))
    # Every setting runs on a sample before the next sample: a machine whose load changes meanwhile slows all alike.
    models = {s.label: CountedModel(model(s.n_ctx, s.overflow)) for s in settings}
    rows = {s.label: Row() for s in settings}
    for sample in tqdm(samples, desc="samples", unit="sample"):
        reference = None
        for setting in settings:
            greedy = run_sample(setting, models[setting.label], sample, rows[setting.label], reference)
            reference = reference or greedy
    for counted in models.values():
        counted.model.close()
    print(
        f"structure keeps {KEEP_SHARE:.0%} of n_ctx: the budget's share of a {args.prompt_tokens}-token prompt; "
        "streaming has the same n_ctx"
    )
    print(report(settings, rows, samples))


if __name__ == "__main__":
    main()
