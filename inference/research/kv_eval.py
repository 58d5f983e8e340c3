"""Evaluating KV-cache policies on real code: samples from the Python standard library and their scores.

A sample is a long prompt cut at a line boundary of a stdlib module and the tokens that really follow it. The prompt
is prefilled once with the full cache, compressed by each policy, and the continuation is then teacher-forced one
token at a time, every policy's cache trimming itself after every token as it would while a user's completion is
decoded (all policies run together: the weights are read once per token for all of them). A line counts as an exact
match when the model's greedy choice is right at every one of its tokens (exactly when greedy decoding would write the
line); token agreement compares each greedy choice with the full cache's; perplexity uses the true tokens. Memory is
the most the global layers' stores held at once. A needle sample defines a value at a chosen depth of the prompt
and asks for it at its end.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cove.inference.model.code_structure import token_ranks
from cove.inference.research.kv_cache import full_cache
from cove.inference.research.kv_policies import capacity_for_bytes, compress
from cove.inference.research.torch_gemma import TorchGemma, prefill

#: The modules earlier rounds tuned policies on.
TUNING_MODULES = (
    "argparse", "difflib", "textwrap", "configparser", "fractions", "shlex", "csv", "json.decoder", "ast",
    "dataclasses", "calendar", "pathlib", "tarfile", "zipfile", "inspect", "enum", "logging.handlers",
    "http.cookiejar", "email.message", "statistics", "optparse", "pprint", "string", "imaplib",
)  # fmt: skip
#: Modules no policy was tuned on (each over 12,000 characters), none of them written here.
HELD_OUT_MODULES = (
    "typing", "functools", "collections", "threading", "subprocess", "socket", "ssl", "smtplib", "ftplib",
    "poplib", "mailbox", "email.utils", "email.feedparser", "email._header_value_parser", "http.client",
    "http.server", "urllib.request", "urllib.parse", "xml.dom.minidom", "xml.etree.ElementTree", "plistlib",
    "pickle", "pickletools", "shutil", "tempfile", "gettext", "locale", "random", "heapq", "weakref", "contextlib",
    "selectors", "asyncio.base_events", "asyncio.tasks", "asyncio.streams", "concurrent.futures._base",
    "multiprocessing.pool", "codecs", "base64", "uuid", "ipaddress", "mimetypes", "wave", "tokenize", "dis",
    "traceback", "warnings", "cmd", "pdb", "bdb", "trace", "timeit", "profile", "pstats", "doctest",
    "unittest.case", "unittest.mock", "tomllib._parser", "zipimport", "runpy", "pkgutil", "sysconfig", "platform",
    "gzip", "lzma",
)  # fmt: skip
MODULES = TUNING_MODULES
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
    #: The code's structure rank of each prompt token (`code_structure.token_ranks`).
    ranks: list[int] = field(default_factory=list)
    #: For a needle: how far into the prompt it was defined (0: the first line, 1: the last).
    depth: float = 0.0


def module_names(which: str | Sequence[str]) -> tuple[str, ...]:
    """The modules of a set ("tuning", "held-out", "all"), or the names given."""
    if isinstance(which, str):
        sets = {"tuning": TUNING_MODULES, "held-out": HELD_OUT_MODULES, "all": TUNING_MODULES + HELD_OUT_MODULES}
        if which not in sets:
            raise ValueError(f"unknown module set {which!r}: tuning, held-out, all, or module names")
        return sets[which]
    return tuple(which)


def module_text(name: str) -> str:
    spec = importlib.util.find_spec(name)  # found, not imported: nothing of it runs
    if spec is None or spec.origin is None:
        raise ValueError(f"no module {name!r} in this Python")
    path = Path(spec.origin)
    if not path.is_file():  # a frozen module (codecs, runpy, ...): its source is still in the standard library
        path = Path(sysconfig.get_paths()["stdlib"], *name.split(".")).with_suffix(".py")
    return path.read_text(encoding="utf-8")


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


def _ranks(prompt: Sequence[int], piece: Piece) -> list[int]:
    return token_ranks([piece(t) for t in prompt], "python")


def code_samples(tokenize: Tokenize, piece: Piece, bos: int, count: int, prompt_tokens: int, continuation: int,
                 seed: int = 0, modules: str | Sequence[str] = "tuning") -> list[Sample]:  # fmt: skip
    """`count` samples: prompt_tokens before a random line start in a module of `modules` (shuffled by `seed`,
    taken in turn), the next `continuation` tokens."""
    rng = random.Random(seed)
    names = list(module_names(modules))
    rng.shuffle(names)
    texts = {name: tokenize(module_text(name)) for name in names}
    names = [n for n in names if len(texts[n]) > prompt_tokens + continuation + 32]
    samples: list[Sample] = []
    for index in range(count):
        name = names[index % len(names)]
        tokens = texts[name]
        cuts = [i + 1 for i in range(prompt_tokens, len(tokens) - continuation) if "\n" in piece(tokens[i])]
        cut = rng.choice(cuts)
        first = next(i + 1 for i in range(cut - prompt_tokens, cut) if "\n" in piece(tokens[i]))
        spans = line_spans(tokens, piece, cut, cut + continuation)
        prompt = [bos, *tokens[first:cut]]
        samples.append(
            Sample(f"{name}@{cut}", prompt, tokens[cut : cut + continuation], spans, ranks=_ranks(prompt, piece))
        )
    return samples


def needle_samples(tokenize: Tokenize, piece: Piece, bos: int, count: int, prompt_tokens: int, seed: int = 1,
                   modules: str | Sequence[str] = "tuning",
                   depths: Sequence[float] = (0.0,)) -> list[Sample]:  # fmt: skip
    """A value assigned on a line at each of `depths` of a ~`prompt_tokens` prompt (0: its first line), asked for
    at the prompt's end; `count` samples per depth, on the modules in turn."""
    rng = random.Random(seed)
    names = list(module_names(modules))
    rng.shuffle(names)
    samples = []
    for index in range(count * len(depths)):
        depth, module = depths[index % len(depths)], names[(index // len(depths)) % len(names)]
        name, value = NEEDLE_NAMES[index % len(NEEDLE_NAMES)], str(rng.randrange(10_000, 100_000))
        lines = module_text(module).split("\n")
        # The module's first lines up to ~prompt_tokens, the needle's line inserted at `depth` of them.
        taken, tokens = 0, 0
        while taken < len(lines) and tokens < prompt_tokens:
            tokens += len(tokenize(lines[taken] + "\n"))
            taken += 1
        at = max(1, min(taken - 1, round(depth * taken)))
        text = "\n".join([*lines[:at], f"{name} = {value}", *lines[at:taken]]) + "\n"
        query = tokenize(f"assert {name} == {value}\n")
        asked = tokenize(f"assert {name} ==")
        if query[: len(asked)] != asked:
            continue
        answer = query[len(asked) :]
        value_end = next(i for i in range(len(answer)) if "\n" in piece(answer[i]))
        prompt = [bos, *tokenize(text), *asked]
        samples.append(Sample(f"needle:{module}@{depth:.2f}", prompt, answer, [(0, value_end)], needle=True,
                              ranks=_ranks(prompt, piece), depth=depth))  # fmt: skip
    return samples


@dataclass
class Score:
    lines: list[bool] = field(default_factory=list)
    agreed: int = 0
    predicted: int = 0
    nll: float = 0.0
    #: The most bytes the global layers held at once (summed over samples), and the tokens the full cache held then:
    #: bytes per token are peak_bytes / tokens.
    peak_bytes: int = 0
    tokens: int = 0
    #: Tokens the global layers held at the peak (the mean over layers, summed over samples).
    held_tokens: int = 0

    def add(self, other: Score) -> None:
        self.lines += other.lines
        self.agreed += other.agreed
        self.predicted += other.predicted
        self.nll += other.nll
        self.peak_bytes += other.peak_bytes
        self.tokens += other.tokens
        self.held_tokens += other.held_tokens

    @property
    def exact(self) -> float:
        return sum(self.lines) / max(1, len(self.lines))

    @property
    def agreement(self) -> float:
        return self.agreed / max(1, self.predicted)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / max(1, self.predicted))


def score(logits: torch.Tensor, sample: Sample, reference: torch.Tensor) -> Score:
    """Exact lines, agreement with `reference` (the full cache's greedy choices) and the true tokens' log-loss."""
    truth = torch.tensor(sample.continuation)
    nll = -logits.log_softmax(dim=-1).gather(1, truth[:, None]).flatten()
    return score_choices(logits.argmax(dim=-1), nll, sample, reference)


def score_choices(greedy: torch.Tensor, nll: torch.Tensor, sample: Sample, reference: torch.Tensor) -> Score:
    """`score` from the greedy choices ([C]) and the true tokens' negative log-likelihoods ([C])."""
    right = greedy == torch.tensor(sample.continuation)
    lines = [bool(right[a:b].all()) for a, b in sample.lines]
    tokens = len(sample.prompt) + len(sample.continuation)
    return Score(lines, int((greedy == reference).sum()), len(greedy), float(nll.sum()), tokens=tokens)


Config = tuple[str, float]


def evaluate_sample(model: TorchGemma, sample: Sample, configs: Sequence[Config],
                    dtype: torch.dtype = torch.float16) -> dict[Config, Score]:  # fmt: skip
    """Every (policy, budget) on one sample: a shared prefill with the full cache, compressed by each policy (as
    kvpress does after a prompt), then the continuation one token at a time through every cache together. A budget
    is a share of the bytes the full cache holds at its peak (prompt and continuation); 1.0: no token budget."""
    full = full_cache(model.config, dtype, record=True)
    full.lines.ranks = torch.tensor(sample.ranks, dtype=torch.int32)
    last = prefill(model, sample.prompt, full)
    peak_tokens = len(sample.prompt) + len(sample.continuation) - 1
    caches = [
        compress(full, policy, model.config, capacity_for_bytes(policy, model.config, peak_tokens, budget), dtype)
        for policy, budget in configs
    ]
    del full
    truth = torch.tensor(sample.continuation)
    logits = last.expand(len(caches), -1)  # [B, V]
    greedy, nll = [], []
    for step in range(len(sample.continuation)):
        greedy.append(logits.argmax(dim=-1))
        nll.append(-logits.log_softmax(dim=-1)[:, truth[step]])
        if step + 1 < len(sample.continuation):
            logits = model.forward(truth[step : step + 1], caches)[:, -1]
    choices, losses = torch.stack(greedy, dim=1), torch.stack(nll, dim=1)  # [B, C]
    reference = choices[[policy for policy, _ in configs].index("full")] if ("full", 1.0) in configs else choices[0]
    results: dict[Config, Score] = {}
    for index, (config, cache) in enumerate(zip(configs, caches, strict=True)):
        result = score_choices(choices[index], losses[index], sample, reference)
        result.peak_bytes = cache.peak_global_bytes()
        result.held_tokens = round(sum(cache.global_tokens()) / len(cache.global_layers))
        results[config] = result
    return results


def bootstrap_ratio(
    mine: Sequence[Score], theirs: Sequence[Score], draws: int = 2000, seed: int = 0, level: float = 0.9
) -> tuple[float, float, float]:
    """Exact-match lines of `mine` as a share of `theirs` (paired by sample), with a `level` bootstrap interval
    drawn by resampling samples."""
    a = torch.tensor([sum(s.lines) for s in mine], dtype=torch.float64)
    b = torch.tensor([sum(s.lines) for s in theirs], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(mine), (draws, len(mine)), generator=generator)
    ratios = a[picks].sum(dim=1) / b[picks].sum(dim=1).clamp_min(1)
    low, high = torch.quantile(ratios, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(a.sum() / max(float(b.sum()), 1.0)), float(low), float(high)
