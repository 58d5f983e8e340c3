"""Evaluating KV-cache policies on real code: samples from the Python standard library and their scores.

A sample is a long prompt cut at a line boundary of a stdlib module and the tokens that really follow it. Scores come
from one teacher-forced pass over that continuation after the prompt's cache was compressed: a line counts as an exact
match when the model's greedy choice is right at every one of its tokens (exactly when greedy decoding would write the
line), token agreement compares each greedy choice with the full cache's, and perplexity uses the true tokens. A needle
sample defines a value near the top of a file and asks for it at the end of the prompt.
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cove.inference.research.kv_cache import KvCache
from cove.inference.research.kv_policies import capacity_for, compress
from cove.inference.research.torch_gemma import TorchGemma, prefill

#: Modules long enough for 2K-token prompts, none of them written here.
MODULES = (
    "argparse", "difflib", "textwrap", "configparser", "fractions", "shlex", "csv", "json.decoder", "ast",
    "dataclasses", "calendar", "pathlib", "tarfile", "zipfile", "inspect", "enum", "logging.handlers",
    "http.cookiejar", "email.message", "statistics", "optparse", "pprint", "string", "imaplib",
)  # fmt: skip
NEEDLE_NAMES = ("_RETRY_LIMIT", "_BUILD_SALT", "_PROTOCOL_MAGIC", "_LEASE_SECONDS", "_SHARD_COUNT", "_CHECKSUM_SEED")

Tokenize = Callable[[str], list[int]]
Piece = Callable[[int], str]


@dataclass(frozen=True)
class Sample:
    name: str
    prompt: list[int]
    continuation: list[int]
    #: [start, end) spans of `continuation` to score as lines (for a needle: the value).
    lines: list[tuple[int, int]]
    needle: bool = False


def module_text(name: str) -> str:
    return Path(importlib.import_module(name).__file__ or "").read_text(encoding="utf-8")


def line_spans(tokens: Sequence[int], piece: Piece, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of whole lines in tokens[start:end] (relative to start) with at least 4 visible characters."""
    spans, begin = [], start
    for i in range(start, end):
        if "\n" in piece(tokens[i]):
            text = "".join(piece(t) for t in tokens[begin : i + 1])
            if len(text.strip()) >= 4:
                spans.append((begin - start, i + 1 - start))
            begin = i + 1
    return spans


def code_samples(tokenize: Tokenize, piece: Piece, bos: int, count: int, prompt_tokens: int, continuation: int,
                 seed: int = 0) -> list[Sample]:  # fmt: skip
    """`count` samples: prompt_tokens before a random line start in a stdlib module, the next `continuation` tokens."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    modules = [m for m in MODULES if len(tokenize(module_text(m))) > prompt_tokens + continuation + 32]
    for index in range(count):
        name = modules[index % len(modules)]
        tokens = tokenize(module_text(name))
        cuts = [i + 1 for i in range(prompt_tokens, len(tokens) - continuation) if "\n" in piece(tokens[i])]
        cut = rng.choice(cuts)
        first = next(i + 1 for i in range(cut - prompt_tokens, cut) if "\n" in piece(tokens[i]))
        spans = line_spans(tokens, piece, cut, cut + continuation)
        samples.append(Sample(f"{name}@{cut}", [bos, *tokens[first:cut]], tokens[cut : cut + continuation], spans))
    return samples


def needle_samples(tokenize: Tokenize, piece: Piece, bos: int, count: int, prompt_tokens: int,
                   seed: int = 1) -> list[Sample]:  # fmt: skip
    """A value assigned on the second line of a module, asked for at the end of a prompt of `prompt_tokens`."""
    rng = random.Random(seed)
    samples = []
    for index in range(count):
        module = MODULES[index % len(MODULES)]
        name, value = NEEDLE_NAMES[index % len(NEEDLE_NAMES)], str(rng.randrange(10_000, 100_000))
        head, _, rest = module_text(module).partition("\n")
        tokens = tokenize(f"{head}\n{name} = {value}\n{rest}")
        cut = next(i + 1 for i in range(prompt_tokens, len(tokens)) if "\n" in piece(tokens[i]))
        query = tokenize(f"assert {name} == {value}\n")
        asked = tokenize(f"assert {name} ==")
        if query[: len(asked)] != asked:
            continue
        answer = query[len(asked) :]
        value_end = next(i for i in range(len(answer)) if "\n" in piece(answer[i]))
        prompt = [bos, *tokens[:cut], *asked]
        samples.append(Sample(f"needle:{module}", prompt, answer, [(0, value_end)], needle=True))
    return samples


@dataclass
class Score:
    lines: list[bool] = field(default_factory=list)
    agreed: int = 0
    predicted: int = 0
    nll: float = 0.0
    #: Bytes the global layers held after the sample, and the most they held at the end of a step.
    bytes_held: int = 0
    peak_bytes: int = 0
    #: Tokens the sequences had (prompt and continuation): bytes per token are bytes_held / tokens.
    tokens: int = 0

    def add(self, other: Score) -> None:
        self.lines += other.lines
        self.agreed += other.agreed
        self.predicted += other.predicted
        self.nll += other.nll
        self.bytes_held += other.bytes_held
        self.peak_bytes += other.peak_bytes
        self.tokens += other.tokens

    @property
    def exact(self) -> float:
        return sum(self.lines) / max(1, len(self.lines))

    @property
    def agreement(self) -> float:
        return self.agreed / max(1, self.predicted)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / max(1, self.predicted))


def continuation_logits(model: TorchGemma, last: torch.Tensor, sample: Sample, cache: KvCache) -> torch.Tensor:
    """Logits predicting each continuation token ([C, V]) given the prompt in `cache` and `last`, its last logits."""
    rest = model.forward(torch.tensor(sample.continuation[:-1], dtype=torch.long), cache)
    return torch.cat([last[None], rest])


def score(logits: torch.Tensor, sample: Sample, reference: torch.Tensor) -> Score:
    """Exact lines, agreement with `reference` (the full cache's greedy choices) and the true tokens' log-loss."""
    truth = torch.tensor(sample.continuation)
    greedy = logits.argmax(dim=-1)
    right = greedy == truth
    nll = -logits.log_softmax(dim=-1).gather(1, truth[:, None]).sum()
    lines = [bool(right[a:b].all()) for a, b in sample.lines]
    return Score(
        lines, int((greedy == reference).sum()), len(truth), float(nll), tokens=len(sample.prompt) + len(truth)
    )


def evaluate_sample(model: TorchGemma, sample: Sample, configs: Sequence[tuple[str, float]],
                    dtype: torch.dtype = torch.float16) -> dict[tuple[str, float], Score]:  # fmt: skip
    """Every (policy, budget) on one sample from a shared prefill (compressing the prompt's cache, as kvpress does)."""
    from cove.inference.research.kv_cache import full_cache

    full = full_cache(model.config, dtype, record=True)
    last = prefill(model, sample.prompt, full)
    results: dict[tuple[str, float], Score] = {}
    reference = torch.empty(0, dtype=torch.long)
    for policy, budget in configs:
        cache = compress(full, policy, model.config, capacity_for(len(sample.prompt), budget), dtype)
        logits = continuation_logits(model, last, sample, cache)
        if policy == "full":
            reference = logits.argmax(dim=-1)
        result = score(logits, sample, reference if reference.numel() else logits.argmax(dim=-1))
        result.bytes_held, result.peak_bytes = cache.global_bytes(), cache.peak_global_bytes
        results[(policy, budget)] = result
    return results
