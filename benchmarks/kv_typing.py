"""Typing latency and suggestion quality of KV-cache settings, keystroke by keystroke on the same keystrokes.

One local model per setting (`--kv-settings`, the first is the reference: today's default), each behind the engine the
language server uses (single-line completions, earlier suggestions reused). Every keystroke goes to every setting in
turn, the order alternating from keystroke to keystroke, so that a change in the machine's load falls on all alike.

Two replays:

  typing     typing_latency.py's keystrokes: lines of stdlib files retyped, switching file after every line
  far edit   in each file, the user types at a line, goes up to a line more than `--far-tokens` tokens above the
             cursor but inside the prompt's window, retypes the second half of it (asking for completions there),
             comes back and retypes the line at the end; then deletes the far line without asking for any
             completion (a paste, a `dd`) and retypes the line at the end again. An SWA-aware cache
             (`swa_full = false`) no longer holds what its sliding layers need to resume that far back: it evaluates
             the window again from its start, where a full-size cache resumes at the edit. Last, the user comes back
             to each file from the others and retypes the second half of that line: the file's KV state is restored
             (an SWA-aware one is saved with its window alone), and the keystroke rolls back a few tokens.

Printed per phase and setting: p50 / p95 / mean / max latency, the first keystroke of the phase (mean over files),
the ratio of p50 and p95 to the reference, the prompt tokens evaluated per keystroke (the rest came from the KV
cache or the previous suggestion), and how often the suggestion was right (exact: the rest of the line; useful:
a prefix of it).

    .venv/bin/python benchmarks/kv_typing.py [--kv-settings f16:full q8_0:swa] [--lines 3] [--far-tokens 520]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from tqdm import tqdm
from typing_latency import FILES, Keystroke, Run, code_lines, keystrokes  # benchmarks/, beside this script

from cove.config import CompletionConfig, ModelConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.completion.prompt_window import choose_anchor, line_starts
from cove.inference.model.kv_memory import KvType
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import locate_model

#: Characters above the far place's line at which the user stood before (it anchors the window high enough).
EARLIER_CHARS = 850


@dataclass(frozen=True)
class KvSetting:
    """A KV-cache setting as `kv_type:full` (every layer keeps every token) or `kv_type:swa` (SWA-aware)."""

    kv_type: KvType
    swa_full: bool

    @property
    def name(self) -> str:
        return f"{self.kv_type}:{'full' if self.swa_full else 'swa'}"

    @classmethod
    def parse(cls, text: str) -> KvSetting:
        kv_type, _, layout = text.partition(":")
        if kv_type not in get_args(KvType) or layout not in ("full", "swa"):
            raise argparse.ArgumentTypeError(f"{text!r}: expected KV_TYPE:full or KV_TYPE:swa, e.g. q8_0:swa")
        return cls(kv_type, layout == "full")  # type: ignore[arg-type]


@dataclass
class Phase:
    """One setting's keystrokes of one phase: latencies and quality, prompt tokens evaluated, first keystrokes."""

    run: Run
    evaluated: list[int] = field(default_factory=list)
    first: list[float] = field(default_factory=list)


#: A keystroke of a replay, labelled with its phase and whether it is the phase's first at that place.
Step = tuple[str, bool, Keystroke]


def retype(path: Path, text: str, number: int, from_column: int) -> Iterator[Keystroke]:
    """Every keystroke of retyping line `number` of `text` from `from_column` (the rest of the line cut first)."""
    lines = text.split("\n")
    target = lines[number]
    start = sum(len(line) + 1 for line in lines[:number])
    indent = len(target) - len(target.lstrip())
    for typed in range(max(from_column, indent + 1), len(target)):
        current = text[:start] + target[:typed] + text[start + len(target) :]
        yield Keystroke(path, current, number, typed, start + typed, target[typed:], typed == indent + 1)


def typing_steps(lines_per_file: int) -> list[Step]:
    """typing_latency.py's keystrokes; a line's first keystroke is its phase's first."""
    return [("typing", stroke.first_of_line, stroke) for stroke in keystrokes(lines_per_file)]


def far_place(
    text: str, far_tokens: int, tokenize: Callable[[str], list[int]], max_prefix_chars: int
) -> tuple[int, int, int] | None:
    """(earlier line, line typed at, far line): a line of code in the last third of the file whose window, anchored
    where the user stood EARLIER_CHARS above, holds a line of code more than `far_tokens` tokens above the cursor."""
    starts = line_starts(text)
    lines = text.split("\n")
    candidates = code_lines(text)
    for line in candidates[2 * len(candidates) // 3 :]:
        earlier = max((c for c in candidates if starts[c] <= starts[line] - EARLIER_CHARS), default=None)
        if earlier is None:
            continue
        indent = len(lines[line]) - len(lines[line].lstrip())
        anchor = choose_anchor(starts, starts[earlier] + len(lines[earlier]), None, max_prefix_chars)
        end = starts[line] + len(lines[line])
        if choose_anchor(starts, end, anchor, max_prefix_chars) != anchor:
            continue  # typing the line would move the window
        cursor = starts[line] + indent + 1
        far = [
            c
            for c in candidates
            if anchor < c < earlier and len(tokenize(text[starts[c] + len(lines[c]) : cursor])) > far_tokens
        ]
        if far:
            return earlier, line, far[-1]
    return None


def far_edit_steps(far_tokens: int, tokenize: Callable[[str], list[int]], max_prefix_chars: int) -> list[Step]:
    """In each file: stand at an earlier line, type at a line, retype half of a far line above it, come back and
    retype the line; delete the far line unseen and retype the line once more. Then, once every file was typed in,
    come back to each and retype the second half of that line: the file's KV state is restored from the saved ones,
    and the keystroke rolls back a few tokens from where the file was left."""
    steps: list[Step] = []
    returns: list[Step] = []
    for path in FILES:
        text = path.read_text()
        place = far_place(text, far_tokens, tokenize, max_prefix_chars)
        if place is None:
            raise SystemExit(f"{path.name}: no line {far_tokens} tokens above a place inside one window")
        earlier, line, far = place
        lines = text.split("\n")
        half = len(lines[far]) - len(lines[far].lstrip()) + len(lines[far].strip()) // 2
        deleted = "\n".join([*lines[:far], *lines[far + 1 :]])
        phases = [
            ("arrive", list(retype(path, text, earlier, 0))[:2] + list(retype(path, text, line, 0))),
            ("far line", list(retype(path, text, far, half))),
            ("back", list(retype(path, text, line, 0))),
            ("back, far line deleted", list(retype(path, deleted, line - 1, 0))),
        ]
        for label, strokes in phases:
            steps += [(label, index == 0, stroke) for index, stroke in enumerate(strokes)]
        rest = list(retype(path, deleted, line - 1, len(lines[line]) - len(lines[line].strip()) // 2))
        returns += [("from another file", index == 0, stroke) for index, stroke in enumerate(rest)]
    return steps + returns


def replay(engines: dict[str, CompletionEngine], steps: list[Step], desc: str) -> dict[str, dict[str, Phase]]:
    """Every step through every engine, the order alternating; per phase and engine what it took."""
    names = list(engines)
    phases: dict[str, dict[str, Phase]] = {}
    for index, (label, first, stroke) in enumerate(tqdm(steps, desc=desc, file=sys.stderr, leave=False)):
        for name in names if index % 2 == 0 else reversed(names):
            phase = phases.setdefault(label, {}).setdefault(name, Phase(Run(name)))
            started = time.perf_counter()
            completion = engines[name].complete(CompletionRequest(str(stroke.path), stroke.text, stroke.offset))
            seconds = time.perf_counter() - started
            phase.run.record(seconds, completion.text, stroke.rest_of_line)
            phase.evaluated.append(completion.prompt_tokens - completion.reused_tokens)
            if first:
                phase.first.append(seconds)
    return phases


def rollback_reach(model: LocalModel, text: str, restored: bool, tokens: int = 1000) -> int:
    """How many tokens from the end of a `tokens`-token prompt plus 10 generated ones can be cut and the rest
    resumed from the cache (`truncate` keeps it), as the cache is or after a save and restore (a document's state
    when the user comes back to it): all of them for a full-size cache; for an SWA-aware one, as far as its sliding
    layers still hold the window before the cut."""
    model.clear()
    model.prefill([model.bos, *model.tokenize(text)][:tokens])
    for _ in range(10):
        model.decode([model.greedy()])
    held = list(model.tokens)
    if restored:
        model.restore_state(held, model.save_state())
    # Cutting only the tail leaves the oldest position held as it was: deeper cuts can be tried one after another.
    for cut in range(1, len(held)):
        model.truncate(len(held) - cut)
        if not model.tokens:
            return cut - 1
    model.clear()
    return len(held) - 1


def report(phases: dict[str, dict[str, Phase]], reference: str) -> None:
    print(
        f"{'phase':<24}{'setting':<10}{'n':>5}{'p50 ms':>8}{'p95 ms':>8}{'mean ms':>8}{'max ms':>8}{'first ms':>9}"
        f"{'p50 x':>7}{'p95 x':>7}{'eval tok':>9}{'exact':>8}{'useful':>8}"
    )
    for label, by_setting in phases.items():
        base = by_setting[reference].run
        for name, phase in by_setting.items():
            run, n = phase.run, len(phase.run.seconds)
            ms = [1000 * run.percentile(0.5), 1000 * run.percentile(0.95), 1000 * statistics.mean(run.seconds)]
            ratios = run.percentile(0.5) / base.percentile(0.5), run.percentile(0.95) / base.percentile(0.95)
            print(
                f"{label:<24}{name:<10}{n:>5}{ms[0]:>8.1f}{ms[1]:>8.1f}{ms[2]:>8.1f}{1000 * max(run.seconds):>8.1f}"
                f"{1000 * statistics.mean(phase.first):>9.1f}"
                f"{ratios[0]:>6.2f}x{ratios[1]:>6.2f}x"
                f"{statistics.mean(phase.evaluated):>9.1f}{100 * run.exact / n:>7.1f}%{100 * run.useful / n:>7.1f}%"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kv-settings", nargs="+", type=KvSetting.parse, default=["f16:full", "q8_0:swa"],
                        help="KV_TYPE:full or KV_TYPE:swa; the first is the reference")  # fmt: skip
    parser.add_argument("--lines", type=int, default=3, help="typing: lines retyped in each file")
    parser.add_argument("--replays", nargs="+", choices=["typing", "far"], default=["typing", "far"])
    parser.add_argument("--far-tokens", type=int, default=520, help="far edit: tokens between the far line and cursor")
    parser.add_argument("--n-ctx", type=int, default=ModelConfig().n_ctx, help="context of every model")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of every model (0: one per core)")
    budget = CompletionConfig().time_budget_ms
    parser.add_argument("--time-budget-ms", type=int, default=budget, help="generation's time limit (a large one: "
                        "by tokens alone, as on an idle machine)")  # fmt: skip
    parser.add_argument("--kv-only", action="store_true", help="ask the model on every keystroke (no reuse)")
    args = parser.parse_args(argv)
    settings = [s if isinstance(s, KvSetting) else KvSetting.parse(s) for s in args.kv_settings]
    config = dataclasses.replace(
        CompletionConfig(), multiline="never", reuse_suggestions=not args.kv_only, time_budget_ms=args.time_budget_ms
    )
    models = {
        s.name: LocalModel(
            locate_model(ModelConfig()),
            ModelConfig(n_ctx=args.n_ctx, n_threads=args.threads, kv_type=s.kv_type, swa_full=s.swa_full),
        )
        for s in settings
    }
    for model in models.values():
        model.tokens_starting_with(b"")  # the vocabulary index for token healing, built once: not timed
    reference = settings[0].name
    tokenize = models[reference].tokenize
    typing = typing_steps(args.lines)
    far = far_edit_steps(args.far_tokens, tokenize, config.max_prefix_chars)
    print(
        f"settings {', '.join(models)} (reference {reference}), n_ctx {args.n_ctx}, "
        f"{'the model on every keystroke' if args.kv_only else 'suggestions reused'}, generation limited to "
        f"{args.time_budget_ms} ms; typing: {len(typing)} "
        f"keystrokes, far edit: {len(far)} keystrokes, the far line more than {args.far_tokens} tokens above the cursor"
    )
    results = {}
    for desc, steps in (("typing", typing), ("far edit", far)):
        if desc.split()[0] not in args.replays:
            continue
        engines = {}
        for name, model in models.items():
            model.clear()
            engines[name] = CompletionEngine(model, config)
        results.update(replay(engines, steps, desc))
    print()
    report(results, reference)
    print(
        "\nfirst ms: the phase's first keystroke at each place (mean); p50 x / p95 x: against the reference; eval tok: "
        "prompt tokens evaluated per keystroke; exact: the suggestion is the rest of the line; useful: the rest of the "
        "line starts with it"
    )
    text = FILES[0].read_text()[20_000:]
    for restored in (False, True):
        reach = ", ".join(f"{name} {rollback_reach(model, text, restored)}" for name, model in models.items())
        state = "after a save and restore" if restored else "as held"
        print(f"tokens cut from the end of a 1,000-token prompt + 10 generated, the rest resumed ({state}): {reach}")
    for model in models.values():
        model.close()


if __name__ == "__main__":
    main()
