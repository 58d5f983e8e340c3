"""What the sandbox costs a command: wall time of `run_command` in the bubblewrap sandbox against the same command
unconfined, in the same run (p50 and p95 over many runs), for `true` and for a short pytest run in a workspace; and
what a checkpoint costs against the repository's size (a copy of the standard library's files, 1,000 and 10,000 of
them): the first one, one after a single file changed (what a step pays), and a restore.

    .venv/bin/python benchmarks/sandbox_overhead.py [--runs 200] [--pytest-runs 20] [--network none]
        [--checkpoint-files 1000,10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from cove.agent.checkpoints import Checkpoints
from cove.agent.command_tool import run_command
from cove.agent.safety import Workspace
from cove.agent.sandbox import Sandbox, unavailable
from cove.config import SandboxConfig


def timings(workspace: Workspace, command: str, runs: int, sandbox: Sandbox | None, label: str) -> list[float]:
    seconds = []
    for _ in tqdm(range(runs), desc=label, file=sys.stderr, leave=False):
        started = time.perf_counter()
        output = run_command(workspace, command, sandbox=sandbox)
        seconds.append(time.perf_counter() - started)
        if not output.startswith("exit status 0"):
            raise SystemExit(f"{command!r} failed ({label}):\n{output}")
    return seconds


def row(name: str, plain: list[float], boxed: list[float]) -> str:
    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000

    extra = p(boxed, 50) - p(plain, 50)
    return (
        f"{name:<10}{len(boxed):>5}{p(plain, 50):>12.1f}{p(boxed, 50):>12.1f}{extra:>12.1f}"
        f"{p(plain, 95):>12.1f}{p(boxed, 95):>12.1f}{p(boxed, 50) / p(plain, 50):>9.2f}x"
    )


def checkpoint_costs(sizes: list[int], runs: int = 10) -> None:
    """Checkpoint timings on workspaces of the standard library's files (copies, so that nothing here wrote them)."""
    library = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    print(f"\n{'files':>7}{'first ms':>11}{'step p50 ms':>13}{'step p95 ms':>13}{'restore ms':>12}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "repo"
            for number, source in enumerate(library[:size] * (size // len(library) + 1)):
                if number == size:
                    break
                target = root / f"{number // 500}" / f"{number}_{source.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read_bytes())
            checkpoints = Checkpoints(root, Path(folder) / "data")
            started = time.perf_counter()
            checkpoints.snapshot("bench", 0, "first")
            first = time.perf_counter() - started
            steps = []
            changed = next(root.rglob("*.py"))
            for step in tqdm(range(1, runs + 1), desc=f"{size} files", file=sys.stderr, leave=False):
                changed.write_text(f"# step {step}\n")
                started = time.perf_counter()
                checkpoints.snapshot("bench", step, "edit_file")
                steps.append(time.perf_counter() - started)
            started = time.perf_counter()
            checkpoints.restore(1)
            restore = time.perf_counter() - started
            q = statistics.quantiles(steps, n=100)
            print(f"{size:>7}{first * 1000:>11.0f}{q[49] * 1000:>13.1f}{q[94] * 1000:>13.1f}{restore * 1000:>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pytest-runs", type=int, default=20)
    parser.add_argument("--network", choices=["none", "loopback", "full"], default="none")
    parser.add_argument("--checkpoint-files", default="1000,10000", help="workspace sizes for the checkpoint costs")
    args = parser.parse_args()
    if unavailable():
        raise SystemExit(f"no sandbox here: {unavailable()}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        test = "def add(a, b):\n    return a + b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
        (root / "test_calc.py").write_text(test)
        workspace = Workspace.at(root)
        sandbox = Sandbox.for_workspace(SandboxConfig(network=args.network), root)
        pytest = f"{sys.executable} -m pytest -q -p no:cacheprovider"
        print(f"sandbox: {sandbox.describe()}; unconfined is the baseline, measured in the same run")
        header = f"{'command':<10}{'n':>5}{'plain p50':>12}{'boxed p50':>12}{'added ms':>12}"
        print(header + f"{'plain p95':>12}{'boxed p95':>12}{'ratio':>10}")
        for name, command, runs in (("true", "true", args.runs), ("pytest", pytest, args.pytest_runs)):
            plain = timings(workspace, command, runs, None, f"{name} plain")
            boxed = timings(workspace, command, runs, sandbox, f"{name} sandboxed")
            print(row(name, plain, boxed))
    checkpoint_costs([int(size) for size in args.checkpoint_files.split(",") if size])


if __name__ == "__main__":
    main()
