"""The local actions on code nobody here wrote: docstrings and tests for undocumented functions of the packages
installed in the virtualenv, commit messages for the history of a repository given with `--repo`.

Each is compared, in the same run and with the same model, with the one-completion baseline it replaces: the
docstring asked for whole after the opening quotes, the test asked for whole after `def test_<name>():`, the commit
subject after a `git commit -m "` prompt. Figures: how often the result parses, follows the file's docstring
style, names the parameters exactly (in order), calls the function with arguments it accepts, and the seconds each
took.

    .venv/bin/python benchmarks/local_actions.py [--docstrings 30] [--tests 20] [--repo PATH --commits 20]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import os
import random
import re
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter
from tqdm import tqdm

from cove.config import load_config
from cove.inference.completion.engine import CompletionEngine, WritingRequest
from cove.server.actions.commit_messages import changed_lines, clean_subject, history, write_subject
from cove.server.actions.docstrings import insert_docstring, one_line_body, write_docstring
from cove.server.actions.local_actions import nearest_example
from cove.server.actions.test_skeletons import call_accepted, write_tests
from cove.server.completion.completions import load_engine
from cove.server.context.code_context import PYTHON
from cove.server.context.python_functions import (
    FileStyle,
    FunctionFacts,
    docstring_style,
    docstrings,
    file_style,
    function_facts,
    parameter_names_in,
)

#: A file counts as written in a style when at least this many of its docstrings show it.
MIN_STYLED = 3


@dataclass
class Sample:
    path: Path
    source: str
    facts: FunctionFacts
    style: FileStyle
    example: str


@dataclass
class Tally:
    """Counts per run: done, and each check passed."""

    done: int = 0
    checks: dict[str, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float, **passed: bool) -> None:
        self.done += 1
        self.seconds.append(seconds)
        for name, ok in passed.items():
            self.checks[name] = self.checks.get(name, 0) + int(ok)

    def row(self, name: str, columns: list[str]) -> str:
        shares = [f"{100 * self.checks.get(c, 0) / max(1, self.done):7.1f}%" for c in columns]
        seconds = sorted(self.seconds)
        median = seconds[len(seconds) // 2] if seconds else 0.0
        return f"{name:<12}{self.done:>4}" + "".join(f"{s:>12}" for s in shares) + f"{median:>10.2f}"


def python_files() -> Iterator[Path]:
    """The installed packages' modules (site-packages), then the standard library's."""
    for root in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]):
        for path in sorted(Path(root).rglob("*.py")):
            if "test" not in path.parts and "tests" not in path.parts and "cove" not in path.parts:
                yield path


def samples(seed: int) -> list[Sample]:
    """Undocumented functions (with parameters, body on its own line) of files written in a sectioned style."""
    parser = tree_sitter.Parser(PYTHON)
    found: list[Sample] = []
    for path in python_files():
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if source.count('"""') + source.count("'''") < 2 * MIN_STYLED:
            continue
        encoded = source.encode("utf-8")
        tree = parser.parse(encoded)
        documented = docstrings(tree, encoded)
        style = file_style([text for _, text in documented])
        if style.style == "plain" or sum(docstring_style(t) == style.style for _, t in documented) < MIN_STYLED:
            continue
        for node in _functions(tree.root_node):
            facts = function_facts(node, encoded)
            if facts.has_docstring or not facts.parameters or facts.name.startswith("__"):
                continue
            if one_line_body(source, facts):
                continue
            found.append(
                Sample(path, source, facts, style, nearest_example(documented, source, style.style, facts.def_line))
            )
    random.Random(seed).shuffle(found)
    # At most two functions per file, so that one large module does not decide the figures.
    per_file: dict[Path, int] = {}
    spread = []
    for sample in found:
        if per_file.get(sample.path, 0) < 2:
            per_file[sample.path] = per_file.get(sample.path, 0) + 1
            spread.append(sample)
    return spread


def _functions(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "function_definition":
            yield current
        stack.extend(current.named_children)


def docstring_checks(sample: Sample, docstring: str) -> dict[str, bool]:
    after = insert_docstring(sample.source, sample.facts, docstring)
    try:
        ast.parse(after)
        parses = True
    except SyntaxError:
        parses = False
    style = docstring_style(docstring)
    names = parameter_names_in(docstring.strip().strip("'\"").strip(), sample.style.style)
    expected = [p.name for p in sample.facts.parameters]
    bare = [n.lstrip("*") for n in names]
    return {
        "parses": parses,
        "style": style == sample.style.style,
        "params": bare == [n.lstrip("*") for n in expected],
    }


async def free_docstring(engine: CompletionEngine, sample: Sample) -> str:
    """The baseline: the docstring asked for whole, after the same prompt, up to the closing quotes."""
    lines = sample.source.split("\n")
    facts = sample.facts
    before = "\n".join(lines[: facts.def_line])[-1800:]
    header = "\n".join(lines[facts.def_line : facts.body_line])
    shown = f"{sample.example}\n{facts.indent}...\n\n\n" if sample.example else ""
    quote = sample.style.quote
    prefix = f"{before}\n{shown}{header}\n{facts.indent}{quote}"
    request = WritingRequest("free#docstring", prefix, stop_at=(quote,), max_tokens=160, budget_s=20.0)
    text = (await asyncio.to_thread(engine.write, request)).text
    return f"{facts.indent}{quote}{text}\n{facts.indent}{quote}\n"


async def measure_docstrings(engine: CompletionEngine, chosen: list[Sample]) -> tuple[Tally, Tally, dict[str, int]]:
    cove, free = Tally(), Tally()
    styles: dict[str, int] = {}

    async def write(request: WritingRequest) -> str:
        return (await asyncio.to_thread(engine.write, request)).text

    for sample in tqdm(chosen, desc="docstrings", file=sys.stderr):
        styles[sample.style.style] = styles.get(sample.style.style, 0) + 1
        started = time.perf_counter()
        docstring = await write_docstring(sample.facts, sample.style, sample.source, sample.example, "cove#doc", write)
        cove.add(time.perf_counter() - started, **docstring_checks(sample, docstring))
        started = time.perf_counter()
        baseline = await free_docstring(engine, sample)
        free.add(time.perf_counter() - started, **docstring_checks(sample, baseline))
    return cove, free, styles


def test_checks(tests: list[str], facts: FunctionFacts) -> dict[str, bool]:
    text = "\n\n\n".join(tests)
    try:
        module = ast.parse(text) if text else None
    except SyntaxError:
        module = None
    calls = [n for n in ast.walk(module) if isinstance(n, ast.Call)] if module else []
    ours = [c for c in calls if getattr(c.func, "id", getattr(c.func, "attr", "")) == facts.name]
    checks = [n for n in ast.walk(module) if isinstance(n, ast.Assert | ast.With)] if module else []
    good = bool(ours) and all(call_accepted(f"{ast.unparse(c)}", facts, assertion=False) for c in ours)
    return {"parses": module is not None and bool(text), "calls": good, "asserts": bool(checks)}


async def measure_tests(engine: CompletionEngine, chosen: list[Sample]) -> tuple[Tally, Tally]:
    cove, free = Tally(), Tally()

    async def write(request: WritingRequest) -> str:
        return (await asyncio.to_thread(engine.write, request)).text

    for sample in tqdm(chosen, desc="tests", file=sys.stderr):
        facts = sample.facts
        head = f"from {sample.path.stem} import {facts.owner or facts.name}\n"
        started = time.perf_counter()
        tests = await write_tests(facts, sample.source, sample.path.name, head, "cove#tests", write)
        cove.add(time.perf_counter() - started, **test_checks(tests, facts))
        started = time.perf_counter()
        lines = sample.source.split("\n")
        function = "\n".join(lines[facts.def_line : facts.end_line + 1])[:1500]
        name = f"test_{facts.name.lstrip('_')}"
        request = WritingRequest(
            "free#tests",
            f"{head}\n\ndef {name}():\n    ",
            context=f"# {sample.path.name}\n{function}\n\n\n",
            stop_at=("\n\n\n", "\ndef ", "\nclass "),
            max_tokens=160,
            budget_s=20.0,
        )
        written = (await asyncio.to_thread(engine.write, request)).text
        free.add(time.perf_counter() - started, **test_checks([f"def {name}():\n    {written}"], facts))
    return cove, free


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _overlap(a: str, b: str) -> float:
    """Word overlap (F1) of two subjects, lower-cased."""
    x, y = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    if not x or not y:
        return 0.0
    common = len(x & y)
    return 0.0 if not common else 2 * common / (len(x) + len(y))


async def measure_commits(engine: CompletionEngine, repo: Path, count: int) -> tuple[Tally, Tally, float, float]:
    cove, free = Tally(), Tally()

    async def write(request: WritingRequest) -> str:
        return (await asyncio.to_thread(engine.write, request)).text

    overlaps: tuple[list[float], list[float]] = ([], [])
    commits = _git(repo, "log", "--no-merges", "--format=%H", f"-{count + 3}").split()[:count]
    for sha in tqdm(commits, desc="commits", file=sys.stderr):
        real = _git(repo, "log", "-1", "--format=%s", sha).strip()
        diff = changed_lines(_git(repo, "show", "--format=", "--no-color", sha), 1200)
        examples = history(repo, f"{sha}~1")
        baseline = WritingRequest(
            "free#commit", f'$ git diff --staged\n{diff}\n$ git commit -m "', stop_at=('"', "\n"), max_tokens=32
        )

        for tally, scores, ours in ((cove, overlaps[0], True), (free, overlaps[1], False)):
            started = time.perf_counter()
            if ours:
                subject = await write_subject(diff, examples, "cove#commit", write)
            else:
                subject = clean_subject(await write(baseline))
            copied = any(subject == s for _, s in examples)
            tally.add(
                time.perf_counter() - started,
                written=bool(subject),
                one_line=bool(subject) and len(subject) <= 72,
                not_copied=bool(subject) and not copied,
            )
            scores.append(_overlap(subject, real))
    return cove, free, sum(overlaps[0]) / max(1, len(commits)), sum(overlaps[1]) / max(1, len(commits))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docstrings", type=int, default=30)
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--repo", type=Path, help="a git repository nobody here wrote, for commit messages")
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    os.environ["COVE_ROUTING_COMPLETE"] = '["local"]'  # the model in this process: no daemon
    engine = load_engine(load_config(None, os.environ, None))
    found = samples(args.seed)
    print(f"{len(found)} undocumented functions in files with a sectioned docstring style (seed {args.seed})")
    header = f"{'run':<12}{'n':>4}"
    if args.docstrings:
        cove, free, styles = await measure_docstrings(engine, found[: args.docstrings])
        print(f"\ndocstrings ({', '.join(f'{k} {v}' for k, v in sorted(styles.items()))})")
        print(header + "".join(f"{c:>12}" for c in ("parses", "file style", "params")) + f"{'median s':>10}")
        for name, tally in (("cove", cove), ("baseline", free)):
            print(tally.row(name, ["parses", "style", "params"]))
    if args.tests:
        top_level = [s for s in found if not s.facts.owner][: args.tests]
        cove, free = await measure_tests(engine, top_level)
        print("\ntests")
        print(header + "".join(f"{c:>12}" for c in ("parses", "calls right", "asserts")) + f"{'median s':>10}")
        for name, tally in (("cove", cove), ("baseline", free)):
            print(tally.row(name, ["parses", "calls", "asserts"]))
    if args.repo:
        cove, free, ours, theirs = await measure_commits(engine, args.repo, args.commits)
        print(f"\ncommit messages ({args.repo.name})")
        print(header + "".join(f"{c:>12}" for c in ("written", "<=72 chars", "not copied")) + f"{'median s':>10}")
        for name, tally in (("cove", cove), ("baseline", free)):
            print(tally.row(name, ["written", "one_line", "not_copied"]))
        print(f"word overlap with the real subject (F1): cove {ours:.2f}, baseline {theirs:.2f}")
    engine.close()


if __name__ == "__main__":
    asyncio.run(main())
