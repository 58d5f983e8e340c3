"""Peak and mean prompt size of a long agent session under three context policies, on real files.

A scripted session (no model decides anything: the script is fixed) makes 200 tool calls reading slices of Python
standard library modules. The first user message carries a requirement; the result of the 10th call carries a fact.
The same session runs three ways in one process:

  none      every turn stays
  last-n    only the last N tool results stay (older ones are dropped)
  cove      agent/compaction.py: mask -> prune -> summarise, with invariants re-injected

Printed: peak and mean prompt tokens (the default model's tokenizer), model calls (agent steps plus summaries), and
whether the requirement and the fact are still in reach at the end (in the context, or archived under a reference
that the context still holds). In this benchmark the summariser is a stand-in that lists the calls made, since no
compact model runs here; it is counted as a model call all the same.

    .venv/bin/python benchmarks/context_peak.py [--steps 200] [--keep-last 10]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from cove.agent.compaction import CompactionPolicy, ContextCompactor, Turn
from cove.config import ModelConfig
from cove.inference.model.model_files import locate_model

MODULES = ["argparse", "textwrap", "json.decoder", "difflib", "shlex", "string", "csv", "configparser", "fractions"]
REQUIREMENT = "REQUIREMENT: keep the public API of every module unchanged"
FACT = "FACT: the retry limit agreed with the user is 7"
INVARIANTS = f"Task requirements are in the first message. Plan: 1. read the modules 2. report. {REQUIREMENT}"


def script(steps: int) -> list[tuple[Turn, Turn]]:
    """(assistant call, tool result) pairs reading 60-line slices of real modules."""
    texts = [Path(importlib.import_module(name).__file__ or "").read_text().split("\n") for name in MODULES]
    pairs = []
    for step in range(steps):
        lines = texts[step % len(texts)]
        start = (step * 37) % max(1, len(lines) - 60)
        call = f"read_file(path={MODULES[step % len(MODULES)]}, start={start + 1}, end={start + 60})"
        body = "\n".join(lines[start : start + 60])
        if step == 9:
            body += f"\n# {FACT}"
        pairs.append((Turn("assistant", f"Calling {call}"), Turn("tool", body, call=call)))
    return pairs


@dataclass
class Outcome:
    name: str
    sizes: list[int]
    model_calls: int
    requirement: bool
    fact: bool


def run(
    name: str, steps: list[tuple[Turn, Turn]], count: Callable[[str], int], policy: Callable[..., list[Turn]]
) -> Outcome:
    turns = [
        Turn("system", "You are Cove, a coding agent."),
        Turn("user", f"Read the modules and report. {REQUIREMENT}"),
    ]
    sizes: list[int] = []
    extra_calls = [0]
    archive: dict[int, Turn] = {}
    for call, result in steps:
        sizes.append(sum(count(t.content) + 4 for t in turns))  # the prompt of this step's model call
        turns = policy([*turns, call, result], archive, extra_calls)
    sizes.append(sum(count(t.content) + 4 for t in turns))
    text = "\n".join(t.content for t in turns)
    fact_refs = [ref for ref, turn in archive.items() if FACT in turn.content]
    fact = FACT in text or any(f"#{ref}" in text for ref in fact_refs)
    return Outcome(name, sizes, len(steps) + extra_calls[0], REQUIREMENT in text, fact)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--keep-last", type=int, default=10, help="N of the last-n baseline")
    args = parser.parse_args()
    vocab = llama_cpp.Llama(str(locate_model(ModelConfig())), vocab_only=True, verbose=False)

    @functools.cache
    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False, special=False))

    steps = script(args.steps)

    def none(turns: list[Turn], archive: dict[int, Turn], calls: list[int]) -> list[Turn]:
        return turns

    def last_n(turns: list[Turn], archive: dict[int, Turn], calls: list[int]) -> list[Turn]:
        tools = [i for i, t in enumerate(turns) if t.role == "tool"]
        drop = set(tools[: -args.keep_last])
        return [t for i, t in enumerate(turns) if i not in drop]

    def summarize(turns: Sequence[Turn]) -> str:
        return "Earlier calls: " + "; ".join(t.call for t in turns if t.call)

    def cove(turns: list[Turn], archive: dict[int, Turn], calls: list[int]) -> list[Turn]:
        def keep(turn: Turn) -> int:
            archive[len(archive) + 1] = turn
            return len(archive)

        def counted_summary(middle: Sequence[Turn]) -> str:
            calls[0] += 1
            return summarize(middle)

        compactor = ContextCompactor(CompactionPolicy(), count, keep, counted_summary)
        compacted, _ = compactor.compact(turns, INVARIANTS)
        return compacted

    outcomes = [run("none", steps, count, none), run("last-n", steps, count, last_n), run("cove", steps, count, cove)]
    base = max(outcomes[0].sizes)
    budget = CompactionPolicy().budget_tokens
    print(f"{args.steps} tool calls over {len(MODULES)} standard library modules; budget {budget}")
    print(f"{'policy':<8} {'peak':>8} {'mean':>8} {'peak/none':>10} {'calls':>6} {'requirement':>12} {'fact@10':>8}")
    for o in outcomes:
        print(
            f"{o.name:<8} {max(o.sizes):>8} {statistics.mean(o.sizes):>8.0f} {max(o.sizes) / base:>9.1%} "
            f"{o.model_calls:>6} {'kept' if o.requirement else 'LOST':>12} {'kept' if o.fact else 'LOST':>8}"
        )
    print("target: cove's peak at most 40% of none, with every planted fact kept")


if __name__ == "__main__":
    main()
