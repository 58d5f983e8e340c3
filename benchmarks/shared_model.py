"""Memory of the daemon's one resident model against a model in every process, and typing through the daemon.

Two layouts, each with 1, 2 and 4 editor windows (a `cove lsp` each, a different stdlib file open in each, one inline
completion asked for so that every model that will load has loaded), then one read-only agent run in the daemon:

  today   `[routing] complete = ["local"]`: every window loads its own model, and the daemon one more for the agent
  cove    `[routing] complete = ["daemon", "local"]`: the daemon's resident model serves every window and the agent

Each layout and window count runs in temporary runtime, data, state and config folders (nothing touches the user's
daemon), its daemon stopped at the end. Printed: the memory of the process tree (the servers, the daemon and their
children) with the windows open and after the agent run, against today's one window without an agent:

  RSS   resident pages of every process: the weights, mmapped from one file in the page cache, once per process
  PSS   (/proc/PID/smaps_rollup) each shared page split among the processes that map it, so the weights count once,
        but a share goes to any process outside the tree that maps the same file (another editor, a test run)
  own   private pages of every process plus, for each mapped file, the most any one process of the tree has
        resident (/proc/PID/smaps): what the tree alone needs, whatever else runs
  anon  PSS of private memory (KV caches, compute buffers, the interpreter)

Then the typing replay of typing_latency.py through a `cove lsp` with its own model and through one routed to the
daemon (same keystrokes, p50/p95 and the ratios), and the socket hop alone: `complete/forget` round trips to the
daemon (framing, JSON and the worker thread of a completion request, without the model).

    .venv/bin/python benchmarks/shared_model.py [--windows 1 2 4] [--no-agent] [--lines 2] [--no-typing] [--hops 300]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_client import EditorSession  # benchmarks/lsp_client.py, beside this script
from tqdm import tqdm
from typing_latency import Run, code_lines, keystrokes, run_lsp  # benchmarks/typing_latency.py

from cove.cli.agent_terminal import follow
from cove.daemon_client import DaemonClient, ensure_daemon
from cove.errors import DaemonUnavailable
from cove.protocol.events import AgentEvent, Finished
from cove.protocol.params import AgentRun, CompleteForget, SessionCreate, StatusParams
from cove.runtime import DaemonPaths, daemon_paths

#: The file each editor window opens, in turn.
WINDOW_FILES = [Path(argparse.__file__), Path(json.decoder.__file__), Path(inspect.__file__), Path(subprocess.__file__)]
LAYOUTS = {"today": ["local"], "cove": ["daemon", "local"]}
XDG = ("XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")
SINGLE_LINE: dict[str, Any] = {"completion": {"multiline": "never"}}
TASK = "What does this project contain?"


@dataclass(frozen=True)
class Snapshot:
    """Memory of a process tree in KiB (RSS, PSS, own, PSS of anonymous pages) and the daemon's model loads so
    far."""

    processes: int
    rss: int
    pss: int
    own: int
    anon: int
    daemon_loads: int


@dataclass(frozen=True)
class Footprint:
    """One layout with some windows open: memory before and after the agent run, who served the windows, and how
    the agent run ended."""

    layout: str
    windows: int
    opened: Snapshot
    with_agent: Snapshot | None
    served_by: str
    agent: str


@contextmanager
def private_runtime() -> Iterator[Path]:
    """os.environ's XDG folders pointed into a temporary folder (yielded) for the servers started meanwhile and the
    daemon they start, which inherit them; the daemon stopped and the environment restored on leaving."""
    saved = {name: os.environ.get(name) for name in XDG}
    with tempfile.TemporaryDirectory(prefix="cove-shared-model-") as folder:
        for name in XDG:
            path = Path(folder) / name.lower()
            path.mkdir(mode=0o700)
            os.environ[name] = str(path)
        try:
            yield Path(folder)
        finally:
            try:
                stop_daemon(daemon_paths())
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value


def daemon_status(paths: DaemonPaths) -> dict[str, Any] | None:
    """The daemon's `status`, or None when none runs there."""
    try:
        with DaemonClient(paths.socket, timeout=30, name="cove-benchmark") as client:
            return dict(client.call(StatusParams()))
    except DaemonUnavailable:
        return None


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_daemon(paths: DaemonPaths) -> None:
    """`cove daemon stop` (with this environment), then wait for the process to end; SIGTERM if it does not."""
    status = daemon_status(paths)
    if status is None:
        return
    subprocess.run([sys.executable, "-m", "cove.cli", "daemon", "stop"], capture_output=True, timeout=60, check=False)
    deadline = time.monotonic() + 30
    while alive(status["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(status["pid"]):
        os.kill(status["pid"], signal.SIGTERM)


def descendants(roots: list[int]) -> set[int]:
    """The processes and all their children, grandchildren, ..."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def snapshot(roots: list[int], paths: DaemonPaths) -> Snapshot:
    """Memory of the process tree under `roots` and the daemon (when one runs), from /proc/PID/smaps_rollup."""
    status = daemon_status(paths)
    if status is not None:
        roots = [*roots, status["pid"]]
    pids = descendants(roots)
    processes = rss = pss = anon = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        except OSError:
            continue  # ended meanwhile
        values = {name: int(rest.split()[0]) for name, _, rest in (line.partition(":") for line in lines)}
        if "Rss" in values:  # a zombie has none
            processes += 1
            rss, pss, anon = rss + values["Rss"], pss + values["Pss"], anon + values.get("Pss_Anon", 0)
    loads = (status or {}).get("completions", {}).get("loads", 0)
    return Snapshot(processes, rss, pss, own_memory(pids), anon, loads)


def own_memory(pids: set[int]) -> int:
    """KiB of the processes with each file's pages counted once: every process's pages that map no file, plus for
    each file the most that one process has resident (they all map the same pages of the page cache)."""
    private = 0
    files: dict[str, int] = {}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
        except OSError:
            continue
        mapped: dict[str, int] = {}
        path = ""
        for line in lines:
            fields = line.split()
            if not fields[0].endswith(":"):  # a mapping's header: range, perms, offset, device, inode[, path]
                path = fields[5] if len(fields) > 5 and fields[4] != "0" else ""
            elif fields[0] == "Rss:" and path:
                mapped[path] = mapped.get(path, 0) + int(fields[1])
            elif fields[0] == "Rss:":
                private += int(fields[1])
        for path, kib in mapped.items():
            files[path] = max(files.get(path, 0), kib)
    return private + sum(files.values())


def middle_of_code(path: Path) -> tuple[str, int, int]:
    """The file's text and a place four characters into a line of code half-way through it."""
    text = path.read_text()
    lines = code_lines(text)
    line = lines[len(lines) // 2]
    target = text.split("\n")[line]
    return text, line, len(target) - len(target.lstrip()) + 4


def make_project(folder: Path) -> Path:
    """A small project for the agent to look at."""
    project = folder / "project"
    project.mkdir()
    shutil.copy(textwrap.__file__, project / "wrap.py")
    (project / "README.md").write_text("# wrap\n\nText wrapping and filling, taken from the standard library.\n")
    return project


async def open_window(routing: list[str], path: Path) -> EditorSession:
    """A server with `path` open and one inline completion answered in the middle of a line of code."""
    session = await EditorSession.start({**SINGLE_LINE, "routing": {"complete": routing}})
    text, line, column = middle_of_code(path)
    await asyncio.wait_for(session.inline(session.open(path, text), line, column), 300)
    return session


def agent_run(paths: DaemonPaths, project: Path, timeout_s: float) -> str:
    """One read-only agent run in the daemon (started first when absent), followed to its end; how it ended."""
    finished: list[Finished] = []
    started = time.perf_counter()
    with ensure_daemon(paths) as client:
        session_id = client.call(SessionCreate(str(project), "shared-model benchmark"))["id"]
        run = AgentRun(
            session_id, TASK, mode="auto-read", plan_first=False, max_steps=2, read_only=True, unfit_model_ok=True
        )
        client.call(run)  # the base model: only its load on the daemon is measured
        client.set_timeout(timeout_s)

        def keep(event: AgentEvent) -> None:
            if isinstance(event, Finished):
                finished.append(event)

        try:
            follow(client, session_id, lambda _: (True, ""), keep)
        except TimeoutError:
            return f"no event for {timeout_s:.0f} s"
    end = finished[0]
    return f"{end.stopped} after {end.steps} steps in {time.perf_counter() - started:.1f} s"


async def measure(layout: str, windows: int, agent: bool, timeout_s: float) -> Footprint:
    """Open the windows in a private runtime, take the tree's memory, run the agent, take it again."""
    with private_runtime() as folder:
        paths = daemon_paths()
        project = make_project(folder)
        sessions: list[EditorSession] = []
        try:
            for index in range(windows):
                sessions.append(await open_window(LAYOUTS[layout], WINDOW_FILES[index % len(WINDOW_FILES)]))
            served = sorted({(await s.status())["completions"].get("answered_last", "?") for s in sessions})
            pids = [session.pid for session in sessions]
            opened = snapshot(pids, paths)
            ended, with_agent = "-", None
            if agent:
                ended = await asyncio.to_thread(agent_run, paths, project, timeout_s)
                with_agent = snapshot(pids, paths)
        finally:
            for session in sessions:
                await session.stop()
    return Footprint(layout, windows, opened, with_agent, "+".join(served), ended)


async def typing_runs(lines: int, hops: int) -> tuple[Run, Run, list[float], int]:
    """The replay through a server with its own model, then through one routed to the daemon, and the socket hop
    timed on that daemon; with how many completions the daemon served."""
    strokes = list(keystrokes(lines))
    with private_runtime():
        local = await run_lsp(strokes, {**SINGLE_LINE, "routing": {"complete": ["local"]}})
    with private_runtime():
        daemon = await run_lsp(strokes, {**SINGLE_LINE, "routing": {"complete": ["daemon", "local"]}})
        status = daemon_status(daemon_paths()) or {}
        hop = await asyncio.to_thread(time_hops, daemon_paths(), hops)
    local.name, daemon.name = "in-process", "daemon"
    return local, daemon, hop, status.get("completions", {}).get("served", 0)


def time_hops(paths: DaemonPaths, count: int) -> list[float]:
    """Seconds of `count` `complete/forget` round trips for documents the daemon never saw."""
    seconds = []
    with DaemonClient(paths.socket, name="cove-benchmark") as client:
        for index in tqdm(range(count), desc="hops", file=sys.stderr, leave=False):
            started = time.perf_counter()
            client.call(CompleteForget(f"file:///nonexistent/cove-benchmark-{index}.py"))
            seconds.append(time.perf_counter() - started)
    return seconds


def mib(kib: int) -> str:
    return f"{kib / 1024:>8.1f}"


def print_memory(footprints: list[Footprint]) -> None:
    base = next(f.opened for f in footprints if f.layout == "today" and f.windows == 1)
    print(
        f"\n{'layout':<7} {'windows':>7} {'stage':<8} {'procs':>5} {'RSS MiB':>8} {'PSS MiB':>8} {'own MiB':>8}"
        f" {'anon MiB':>8} {'RSS x':>6} {'PSS x':>6} {'own x':>6} {'daemon loads':>12}  served by / agent run"
    )
    for f in footprints:
        stages = [("windows", f.opened, f.served_by), ("+agent", f.with_agent, f.agent)]
        for stage, shot, note in stages:
            if shot is not None:
                print(
                    f"{f.layout:<7} {f.windows:>7} {stage:<8} {shot.processes:>5} {mib(shot.rss)} {mib(shot.pss)}"
                    f" {mib(shot.own)} {mib(shot.anon)} {shot.rss / base.rss:>6.2f} {shot.pss / base.pss:>6.2f}"
                    f" {shot.own / base.own:>6.2f}"
                    f" {shot.daemon_loads:>12}  {note}"
                )
    print("x: against today's one window without the agent; daemon loads: models the daemon loaded so far")


def memory_target(footprints: list[Footprint]) -> str:
    base = next(f.opened for f in footprints if f.layout == "today" and f.windows == 1)
    most = max(f.windows for f in footprints)
    shots = {f.layout: f.with_agent or f.opened for f in footprints if f.windows == most}
    cove, today = shots["cove"], shots["today"]
    agent = " + agent" if footprints[0].with_agent else ""
    return (
        f"{most} windows{agent}: PSS {cove.pss / base.pss:.2f}x today's one window (target <= 1.3x; today's "
        f"{today.pss / base.pss:.2f}x), own {cove.own / base.own:.2f}x (today's {today.own / base.own:.2f}x), RSS "
        f"{cove.rss / base.rss:.2f}x (today's {today.rss / base.rss:.2f}x)"
    )


def print_typing(local: Run, daemon: Run, hops: list[float], served: int) -> list[str]:
    """The replay's table and the hop; returns the targets' parts."""
    print(
        f"\n{'run':<11} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'p50 x':>6} {'p95 x':>6}"
        f" {'exact':>7} {'useful':>7}"
    )
    for run in (local, daemon):
        n = len(run.seconds)
        print(
            f"{run.name:<11} {n:>5} {run.percentile(0.5) * 1000:>8.1f} {run.percentile(0.95) * 1000:>8.1f}"
            f" {sum(run.seconds) / n * 1000:>8.1f} {run.percentile(0.5) / local.percentile(0.5):>6.2f}"
            f" {run.percentile(0.95) / local.percentile(0.95):>6.2f} {100 * run.exact / n:>6.1f}%"
            f" {100 * run.useful / n:>6.1f}%"
        )
    hop = Run("hop", hops)
    p50, p95 = hop.percentile(0.5) * 1000, hop.percentile(0.95) * 1000
    print(
        f"x: against in-process; the daemon served {served} completions\n"
        f"socket hop ({len(hops)} complete/forget round trips): p50 {p50:.3f} ms, p95 {p95:.3f} ms; daemon p50 minus "
        f"in-process p50: {(daemon.percentile(0.5) - local.percentile(0.5)) * 1000:.2f} ms"
    )
    return [
        f"socket hop p50 {p50:.2f} ms (target <= 1 ms)",
        f"typing replay p50/p95 daemon over in-process {daemon.percentile(0.5) / local.percentile(0.5):.2f}/"
        f"{daemon.percentile(0.95) / local.percentile(0.95):.2f} (target within 1.1x)",
    ]


async def main_async(args: argparse.Namespace) -> None:
    counts = sorted({1, *args.windows})  # today's one window is the baseline
    runs = [(layout, n) for n in counts for layout in LAYOUTS]
    print(
        f"memory: {', '.join(str(n) for n in counts)} windows ({', '.join(p.name for p in WINDOW_FILES)} in turn)"
        + (f", then an agent run ({TASK!r}, read-only, 2 steps at most)" if args.agent else "")
    )
    footprints = []
    for layout, windows in tqdm(runs, desc="layouts", file=sys.stderr, leave=False):
        footprints.append(await measure(layout, windows, args.agent, args.agent_timeout_s))
    print_memory(footprints)
    targets = [memory_target(footprints)]
    if args.typing:
        print(f"\ntyping replay: {args.lines} lines in each of typing_latency.py's files, single-line completions")
        targets += print_typing(*await typing_runs(args.lines, args.hops))
    print("\ntargets: " + "; ".join(targets))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 2, 4], help="editor windows (1 always runs)")
    parser.add_argument("--agent", action=argparse.BooleanOptionalAction, default=True, help="the agent run")
    parser.add_argument("--agent-timeout-s", type=float, default=300, help="give the agent run up after a silence")
    parser.add_argument("--typing", action=argparse.BooleanOptionalAction, default=True, help="the typing replay")
    parser.add_argument("--lines", type=int, default=2, help="typing: lines retyped in each file")
    parser.add_argument("--hops", type=int, default=300, help="typing: complete/forget round trips timed")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
