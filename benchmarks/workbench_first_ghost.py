"""Time to the first ghost text in a real VS Code workbench, next to the same places through `cove lsp` directly.

A copy of a standard-library file is opened in code-server (VS Code for the browser, driven by Chromium through
Playwright, with Cove's extension from its .vsix: tests/editors/workbench.py). At each of --places random lines the
line is emptied to its indent, the cursor rests --pause-s (the extension sends `cove/cursor`, the server warms that
place), and the line's first --chars characters are typed, a keystroke every --keystroke-ms. Timed in the page:
from the last keystroke (its keydown) to the `.ghost-text-decoration` element. The `lsp` run does the same through
the real server over stdio (didChange per keystroke, cove/cursor, inlineCompletion after each): from the last
didChange to the answer. The ratio is what VS Code (its client, its rendering) adds to the server's time.

    .venv/bin/python benchmarks/workbench_first_ghost.py [--places 12] [--chars 3] [--keystroke-ms 150] [--pause-s 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsp_client import EditorSession  # benchmarks/lsp_client.py, beside this script
from lsprotocol import types
from tqdm import tqdm
from typing_latency import code_lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.editors.workbench import Workbench, missing, open_workbench

SOURCE = Path(textwrap.__file__)

#: Records, in the page, when the last key went down and when ghost text next appeared after it.
TIMING = """
window.__lastKey = 0; window.__ghostAt = 0;
document.addEventListener('keydown', () => { window.__lastKey = performance.now(); window.__ghostAt = 0; }, true);
new MutationObserver(() => {
  if (window.__lastKey && !window.__ghostAt && document.querySelector('.ghost-text-decoration')) {
    window.__ghostAt = performance.now();
  }
}).observe(document, {subtree: true, childList: true});
"""


@dataclass(frozen=True)
class Place:
    line: int  # 0-based
    indent: str
    content: str  # the line after its indent


@dataclass
class Run:
    name: str
    seconds: list[float] = field(default_factory=list)
    missed: int = 0

    def row(self, baseline: Run | None) -> str:
        if not self.seconds:
            return f"{self.name:<8} {0:>4} {self.missed:>7}"
        ordered = sorted(self.seconds)
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000
        ratio = f"{p50 / (statistics.median(baseline.seconds) * 1000):>7.2f}x" if baseline and baseline.seconds else ""
        most = ordered[-1] * 1000
        return f"{self.name:<8} {len(ordered):>4} {self.missed:>7} {p50:>8.0f} {p95:>8.0f} {most:>8.0f} {ratio}"


def places(text: str, count: int, seed: int) -> list[Place]:
    lines = text.split("\n")
    chosen = sorted(random.Random(seed).sample(code_lines(text), count))
    return [Place(n, lines[n][: len(lines[n]) - len(lines[n].lstrip())], lines[n].lstrip()) for n in chosen]


def in_workbench(bench: Workbench, place: Place, chars: int, keystroke_ms: int, pause_s: float) -> float | None:
    """Seconds from the last keystroke to ghost text at `place` (None: none within 15 s); the line restored after."""
    page = bench.page
    page.keyboard.press("Escape")
    page.keyboard.press("Control+G")
    page.keyboard.type(str(place.line + 1))
    page.keyboard.press("Enter")
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")  # to the first non-blank: the indent stays
    page.keyboard.press("Delete")
    time.sleep(pause_s)
    page.keyboard.type(place.content[:chars], delay=keystroke_ms)
    deadline = time.monotonic() + 15
    seconds = None
    while time.monotonic() < deadline:
        at, last = page.evaluate("() => [window.__ghostAt, window.__lastKey]")
        if at:
            seconds = (at - last) / 1000
            break
        time.sleep(0.02)
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Home")
    page.keyboard.insert_text(place.content)  # one edit, no keystrokes: the file as it was
    page.keyboard.press("Escape")
    return seconds


async def through_lsp(text: str, chosen: list[Place], chars: int, keystroke_ms: int, pause_s: float) -> Run:
    run = Run("lsp")
    session = await EditorSession.start({})
    uri = session.open(Path(tempfile.gettempdir()) / "cove-first-ghost" / SOURCE.name, text)
    await session.inline(uri, 0, 0)  # waits for the model to load: not timed
    lines = text.split("\n")
    for place in tqdm(chosen, desc="lsp", file=sys.stderr, leave=False):
        whole = types.Range(types.Position(place.line, 0), types.Position(place.line, len(lines[place.line])))
        session.change(uri, types.TextDocumentContentChangePartial(range=whole, text=place.indent))
        column = len(place.indent)
        session.cursor(uri, place.line, column)
        await asyncio.sleep(pause_s)
        seconds = 0.0
        suggestion = ""
        for typed in range(1, chars + 1):
            started = time.perf_counter()
            session.type(uri, place.line, column + typed - 1, place.content[typed - 1])
            suggestion = await session.inline(uri, place.line, column + typed)
            seconds = time.perf_counter() - started
            await asyncio.sleep(max(0.0, keystroke_ms / 1000 - seconds))
        if suggestion.strip():
            run.seconds.append(seconds)
        else:
            run.missed += 1
        typed_range = types.Range(types.Position(place.line, 0), types.Position(place.line, column + chars))
        session.change(uri, types.TextDocumentContentChangePartial(range=typed_range, text=lines[place.line]))
    await session.stop()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--places", type=int, default=12)
    parser.add_argument("--chars", type=int, default=3)
    parser.add_argument("--keystroke-ms", type=int, default=150)
    parser.add_argument("--pause-s", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if missing():
        sys.exit("code-server and chromium are needed: scripts/test installs code-server into build/code-server")
    text = SOURCE.read_text()
    chosen = places(text, args.places, args.seed)
    print(
        f"first ghost text at {len(chosen)} random lines of {SOURCE.name}: the line emptied, a {args.pause_s:g} s "
        f"pause, {args.chars} characters typed a keystroke every {args.keystroke_ms} ms"
    )
    lsp = asyncio.run(through_lsp(text, chosen, args.chars, args.keystroke_ms, args.pause_s))
    vscode = Run("vscode")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
        env.update({f"XDG_{name}_HOME": str(tmp / name.lower()) for name in ("CONFIG", "STATE", "DATA")})
        env["COVE_ROUTING_COMPLETE"] = '["local"]'  # its own model, as the lsp run's
        with open_workbench(tmp, env, {SOURCE.name: text}) as bench:
            bench.page.add_init_script(TIMING)
            bench.page.reload()
            bench.page.wait_for_selector(".monaco-workbench", timeout=120_000)
            bench.open_file(SOURCE.name)
            bench.wait_ready()
            bench.page.wait_for_selector(".statusbar-item:has-text('Cove: local')", timeout=180_000)  # model loaded
            bench.page.click(".monaco-editor .view-lines")
            for place in tqdm(chosen, desc="vscode", file=sys.stderr, leave=False):
                seconds = in_workbench(bench, place, args.chars, args.keystroke_ms, args.pause_s)
                if seconds is None:
                    vscode.missed += 1
                else:
                    vscode.seconds.append(seconds)
    print(f"\n{'run':<8} {'n':>4} {'missed':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  vs lsp")
    print(lsp.row(None))
    print(vscode.row(lsp))


if __name__ == "__main__":
    main()
