"""Suggestions at a person's pace: keystrokes at a fixed cadence that never wait for replies, each request cancelled
by the next as editors do, at new places of standard-library files, through the real `cove lsp` — against today's
engine (the server of an earlier commit, `--baseline`) in the same run.

Each keystroke is an incremental `didChange` and an `inlineCompletion` request; a request still pending when the
next keystroke comes is cancelled (`$/cancelRequest`) and its reply ignored. What is on screen is modelled as an
editor shows ghost text: a reply to the newest request shows its suggestion; a keystroke that types the suggestion's
next character keeps the rest on screen, any other keystroke clears it. Per place:

  first     time from the first keystroke to the first suggestion on screen
  stall     the longest stretch of typing (first to last keystroke) with nothing on screen
  covered   the share of the typing after the first suggestion with a suggestion on screen
  exact     per keystroke, the suggestion on screen when the next key comes is the rest of the line
  useful    ... the rest of the line starts with it

Paces: a keystroke every N ms (`150`, `250`), `mix` (150-260 ms with pauses of 0.5-1.2 s), and `seq` (the next
keystroke only after the reply: the replay the older benchmarks use; `later max` is the longest wait after the
first keystroke at a place). `+hint`: the editor plugins' `cove/cursor` on arrival and a 1 s rest before typing.
Like the plugins, the client asks again at the cursor when the server sends `cove/suggestionReady` (today's server
never does).

    .venv/bin/python benchmarks/typing_pace.py [--places 6] [--paces 150 250 mix seq] [--keys 12] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_client import EditorSession  # benchmarks/lsp_client.py, beside this script
from lsprotocol import types
from tqdm import tqdm
from typing_latency import COLD_FILES, Place, cold_places

ROOT = Path(__file__).resolve().parents[1]
#: The commit before suggestions kept up with typing: "today's engine".
BASELINE = "83d1a15"


@dataclass
class Trace:
    """One place typed: when each key went (seconds from the first), and the replies to the newest request."""

    content: str
    keys: list[float] = field(default_factory=list)
    #: (time, keystroke index (1-based: characters typed), suggestion) of replies that the editor would show.
    shown: list[tuple[float, int, str]] = field(default_factory=list)
    #: Seconds each keystroke after the first waited for its reply (`seq` only).
    waits: list[float] = field(default_factory=list)


@dataclass
class PlaceFigures:
    first: float
    stall: float
    covered: float
    exact: int
    useful: int
    keystrokes: int


def screen(trace: Trace, settle: float) -> PlaceFigures:
    """Replay the trace as an editor shows it (see the module's docstring) and measure it; `settle`: the first
    suggestion's time when none came."""
    events = sorted([(t, 0, i + 1, "") for i, t in enumerate(trace.keys)] + [(t, 1, i, s) for t, i, s in trace.shown])
    showing: tuple[int, str] | None = None  # (characters typed when it was answered, the suggestion)
    typed = 0
    changes: list[tuple[float, bool]] = []  # when the screen went from nothing to a suggestion, and back
    seen_at_key: list[str] = []  # what was on screen when each keystroke after the first came, and at the end

    def visible() -> str:
        return "" if showing is None else showing[1][typed - showing[0] :]

    for t, kind, index, text in events:
        was_on = showing is not None
        if kind == 0:
            if index > 1:
                seen_at_key.append(visible())
            typed = index
            if showing is not None and not (
                showing[1].startswith(trace.content[showing[0] : typed]) and visible().strip()
            ):
                showing = None
        elif index == typed:
            showing = (index, text) if text.strip() else None
        if (showing is not None) != was_on:
            changes.append((t, showing is not None))
    seen_at_key.append(visible())
    start, end = trace.keys[0], trace.keys[-1]
    first = next((t - start for t, on in changes if on), None)
    # Stretches with nothing on screen between the first keystroke and the last.
    stall, off_since, on_time, on_since = 0.0, start, 0.0, None
    for t, on in changes:
        t = min(max(t, start), end)
        if on:
            stall, on_since = max(stall, t - off_since), t
        else:
            if on_since is not None:
                on_time += t - on_since
            off_since, on_since = t, None
    if on_since is None:
        stall = max(stall, end - off_since)
    else:
        on_time += end - on_since
    span = end - start - first if first is not None and first < end - start else 0.0
    exact = useful = 0
    for index, seen in enumerate(seen_at_key, start=1):
        rest = trace.content[index:]
        if seen.strip():
            exact += seen.rstrip() == rest.rstrip()
            useful += rest.startswith(seen.rstrip())
    return PlaceFigures(
        first if first is not None else settle,
        stall,
        on_time / span if span > 0 else 0.0,
        exact,
        useful,
        len(seen_at_key),
    )


def gaps_for(pace: str, count: int, rng: random.Random) -> list[float]:
    """Seconds between keystrokes: fixed, or a person's mix of quick keys and pauses."""
    if pace == "mix":
        return [rng.uniform(0.5, 1.2) if rng.random() < 0.12 else rng.uniform(0.15, 0.26) for _ in range(count)]
    return [int(pace) / 1000] * count if pace != "seq" else [0.15] * count


async def type_place(
    session: EditorSession, place: Place, keys: int, pace: str, hint: bool, rng: random.Random
) -> Trace:
    """Open the place, (hint: tell the server the cursor and rest 1 s), type `keys` characters at the pace, wait
    for the last reply, close the file."""
    uri = session.open(place.path, place.text)
    column = len(place.indent)
    if hint:
        session.cursor(uri, place.line, column)
        await asyncio.sleep(1.0)
    trace = Trace(place.content)
    started = time.perf_counter()
    protocol = session.client.protocol
    pending: tuple[str, asyncio.Future[Any]] | None = None
    typed = 0

    def reply(index: int, ident: str, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        if pending is None or pending[0] != ident:
            return  # the editor cancelled it: a newer keystroke came
        result = future.result()
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        text = str(items[0].insert_text) if items else ""
        trace.shown.append((time.perf_counter() - started, index, text))

    def ask(index: int) -> asyncio.Future[Any]:
        nonlocal pending
        if pending is not None and not pending[1].done():
            protocol.notify("$/cancelRequest", types.CancelParams(id=pending[0]))
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(place.line, column + index),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        ident = str(uuid.uuid4())
        future = asyncio.wrap_future(protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=ident))
        pending = (ident, future)
        future.add_done_callback(functools.partial(reply, index, ident))
        return future

    def ready(ready_uri: str) -> None:  # as the plugins do: ask again where the cursor is
        if ready_uri == uri and typed:
            ask(typed)

    session.on_suggestion_ready = ready
    for index, gap in enumerate(gaps_for(pace, keys, rng), start=1):
        if pending is not None and not pending[1].done():
            protocol.notify("$/cancelRequest", types.CancelParams(id=pending[0]))
        trace.keys.append(time.perf_counter() - started)
        session.type(uri, place.line, column + index - 1, place.content[index - 1])
        typed = index
        future = ask(index)
        if pace == "seq":
            asked = time.perf_counter()
            await asyncio.wait([future], timeout=30)
            if index > 1:
                trace.waits.append(time.perf_counter() - asked)
        await asyncio.sleep(max(0.0, started + trace.keys[-1] + gap - time.perf_counter()))
    if pending is not None:
        await asyncio.wait([pending[1]], timeout=30)
    await asyncio.sleep(1.0)  # a suggestion made whole after the last keystroke is announced, and asked again
    if pending is not None:
        await asyncio.wait([pending[1]], timeout=30)
    session.on_suggestion_ready = None
    session.close(uri)
    await asyncio.sleep(0.3)  # what the server does for a closed file stops
    return trace


def baseline_package(rev: str) -> Path:
    """Today's engine: the sources of `rev` laid out as the installed package (cove.server is server/, ...)."""
    folder = ROOT / "build" / f"baseline-{rev}"
    if not (folder / "pkg" / "cove").exists():
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "src").mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder / "src")], input=archive, check=True)
        package = folder / "pkg" / "cove"
        package.mkdir(parents=True)
        for entry in (folder / "src" / "cove").iterdir():
            (package / entry.name).symlink_to(entry)
        for part in ("server", "agent", "inference"):
            (package / part).symlink_to(folder / "src" / part)
    return folder / "pkg"


@dataclass(frozen=True)
class Variant:
    name: str
    pythonpath: Path | None
    hint: bool


async def start(variant: Variant, settings: dict[str, Any], runtime: Path) -> EditorSession:
    """The variant's server, its model loaded; a daemon it starts (`--route daemon`) is its own, in `runtime`."""
    saved = dict(os.environ)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    if variant.pythonpath is not None:  # and not the working directory, which holds today's tree
        os.environ.update(PYTHONPATH=str(variant.pythonpath), PYTHONSAFEPATH="1")
    try:
        session = await EditorSession.start(settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    warmup = session.open(Path("/nonexistent/cove-benchmark-warmup.py"), "import os\n")
    await session.inline(warmup, 1, 0)  # waits for the model to load: not timed
    session.close(warmup)
    return session


async def run(args: argparse.Namespace) -> dict[tuple[str, str], list[tuple[PlaceFigures, Trace]]]:
    today = baseline_package(args.baseline)
    variants = [
        Variant("today", today, False),
        Variant("cove", None, False),
        Variant("today+hint", today, True),
        Variant("cove+hint", None, True),
    ]
    settings: dict[str, Any] = {"routing": {"complete": [args.route]}}
    runtimes = [Path(tempfile.mkdtemp(prefix=f"cove-pace-{variant.name}-")) for variant in variants]
    sessions = [await start(variant, settings, runtime) for variant, runtime in zip(variants, runtimes, strict=True)]
    everything = cold_places(args.places * len(args.paces), args.seed)
    places = [p for p in everything if len(p.content) > args.keys + 3] or everything
    results: dict[tuple[str, str], list[tuple[PlaceFigures, Trace]]] = {}
    total = len(args.paces) * args.places * len(variants)
    with tqdm(total=total, desc="places typed", file=sys.stderr, leave=False) as progress:
        for p_index, pace in enumerate(args.paces):
            for place in places[p_index * args.places : (p_index + 1) * args.places]:
                keys = min(args.keys, len(place.content) - 1)
                for variant, session in zip(variants, sessions, strict=True):
                    rng = random.Random(f"{args.seed}-{place.path}-{place.line}")  # the same gaps for every variant
                    trace = await type_place(session, place, keys, pace, variant.hint, rng)
                    results.setdefault((variant.name, pace), []).append((screen(trace, 30.0), trace))
                    progress.update()
    for variant, session in zip(variants, sessions, strict=True):
        status = await session.status()
        typing, warm = status.get("typing"), status.get("warm", {})
        share = ""
        if typing and typing.get("generations"):
            share = f"; short window's share of generations {warm['short_answers'] / typing['generations']:.0%}"
        print(f"{variant.name}: typing {typing or '-'}, warm {warm}{share}")
        await session.stop()
    for variant, runtime in zip(variants, runtimes, strict=True):  # the daemons they started, if any
        env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=str(variant.pythonpath or ""))
        stop = [sys.executable, "-m", "cove.cli", "daemon", "stop"]
        await asyncio.to_thread(subprocess.run, stop, env=env, capture_output=True, check=False)
        shutil.rmtree(runtime, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--places", type=int, default=6, help="new places typed at, per pace")
    parser.add_argument("--paces", nargs="+", default=["150", "250", "mix", "seq"], help="ms per key, mix, seq")
    parser.add_argument("--keys", type=int, default=12, help="keystrokes typed at each place")
    parser.add_argument("--seed", type=int, default=1, help="which random places")
    parser.add_argument("--baseline", default=BASELINE, help="the commit whose server is today's engine")
    parser.add_argument("--route", default="local", choices=["local", "daemon"], help="[routing] complete")
    parser.add_argument("--traces", type=Path, help="write every place's keystrokes and replies here (JSON)")
    args = parser.parse_args(argv)
    files = ", ".join(sorted({path.name for path in COLD_FILES}))
    print(
        f"{args.places} new places per pace in {files}; {args.keys} keystrokes each, requests cancelled by the next "
        f"key, never awaited (but in seq); completions from {args.route}; today = {args.baseline}"
    )
    results = asyncio.run(run(args))
    if args.traces:
        traces = [dict(variant=n, pace=p, **dataclasses.asdict(t)) for (n, p), got in results.items() for _, t in got]
        args.traces.write_text(json.dumps(traces, indent=1))
    print(
        f"\n{'variant':<11} {'pace':>4} {'first p50':>9} {'first max':>9} {'stall p50':>9} {'stall max':>9}"
        f" {'covered':>7} {'exact':>6} {'useful':>6} {'later max':>9}"
    )
    for (name, pace), rows in results.items():
        figures = [f for f, _ in rows]
        keystrokes = sum(f.keystrokes for f in figures)
        waits = [w for _, t in rows for w in t.waits]
        firsts, stalls = [f.first for f in figures], [f.stall for f in figures]
        exact, useful = sum(f.exact for f in figures) / keystrokes, sum(f.useful for f in figures) / keystrokes
        print(
            f"{name:<11} {pace:>4} {ms(statistics.median(firsts))} {ms(max(firsts))} {ms(statistics.median(stalls))}"
            f" {ms(max(stalls))} {100 * statistics.mean(f.covered for f in figures):>6.0f}% {100 * exact:>5.1f}%"
            f" {100 * useful:>5.1f}% {ms(max(waits)) if waits else '        -'}"
        )
    for pace in args.paces:
        for hint in ("", "+hint"):
            today = [f for f, _ in results[(f"today{hint}", pace)]]
            cove = [f for f, _ in results[(f"cove{hint}", pace)]]
            first = statistics.median(f.first for f in today) / max(1e-3, statistics.median(f.first for f in cove))
            stall = statistics.median(f.stall for f in today) / max(1e-3, statistics.median(f.stall for f in cove))
            print(f"pace {pace}{hint}: first p50 today/cove {first:.1f}x, stall p50 today/cove {stall:.1f}x")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:>9.0f}"


if __name__ == "__main__":
    main()
