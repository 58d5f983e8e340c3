"""Cross-file completion quality on packages nobody here wrote (CrossCodeEval's construction).

Each package installed in the virtualenv (httpx, pygls, anyio, cattrs, pathspec, pip's rich, ...) is copied one level
below a workspace root, as a checkout would hold it. Target lines are lines that use a name the module imports from
another module of the same package (`from ._models import Request` ... `request = Request(`); control lines use
none. At each target the line is cut after its first --cut characters (past the indentation) and the local model
completes the rest of the line; the suggestion is scored by exact match with the line's rest and by edit
similarity. Runs on the same targets, in one process:

  none      no workspace context
  baseline  the context as it landed before issue 17 (benchmarks/baseline_context.py)
  imports   today's context without the project's index: imported definitions, enclosing headers
  index     the index alone: definitions of the names near the cursor from the project's code index
            (agent/code_index.py, built over the workspace first), with the enclosing headers
  cove      the context as issue 17's first steps left it — imports, index, enclosing headers, recent edits — with
            the imports of JavaScript (server/context/script_imports.py), which came after
  recent    the ring of recently seen code alone (with the headers): before each target the user was at the places
            of the 6 targets before it in the same package (views of CHUNK_LINES around each), as in a session
            that moves through a package
  lookup    the ring when the user also looked at a definition the line uses before writing it (go to definition,
            then back): a view of the chunk defining one name of the cut line's package (an upper bound of what
            views can bring; control lines get a view of a random definition of their package)
  neighbours  the index's BM25 neighbours of the window alone (with the headers)
  all       every source, with the session's ring (not the lookup)

Single-line completions of the full window (not the short first window, which has no context by design) with a
generous time budget (--budget-ms), so that the scores are the prompt's, not the clock's.
Also printed: the context's characters and tokens added to the prompt, and its gathering time per request.

    .venv/bin/python benchmarks/crossfile.py [--targets 60] [--controls 20] [--seed 1] [--cut 4] [--plot PNG]
                                             [--rows none,cove,all]
    .venv/bin/python benchmarks/crossfile.py --replot OUTPUT --plot PNG   # the plot of a run's printed tables
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import importlib.util
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter
from baseline_context import BaselineContext  # benchmarks/baseline_context.py, beside this script
from tqdm import tqdm

from cove import languages
from cove.agent.code_index import Chunk, CodeIndex
from cove.config import CompletionConfig, ModelConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.completion.prompt_window import choose_anchor, line_starts
from cove.inference.model.local_model import LocalModel
from cove.inference.model.model_files import locate_model
from cove.server.context.python_imports import resolve
from cove.server.context.recent_code import RecentCode
from cove.server.context.workspace_context import SOURCES, WorkspaceContext, parse_imports

REPO = Path(__file__).resolve().parent.parent
#: JavaScript packages of the VS Code extension's node_modules (compiled TypeScript, modules that require each
#: other), there after scripts/setup.
JS_PACKAGES = [
    "editors/vscode/node_modules/vscode-jsonrpc/lib/common",
    "editors/vscode/node_modules/vscode-languageserver-protocol/lib/common",
]
PACKAGES = ["httpx", "httpcore", "pygls", "anyio", "cattrs", "pathspec", "h11", "pip._vendor.rich"]
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Target:
    path: Path
    text: str  # the file cut at the cursor's line: the rest of the line removed
    offset: int
    truth: str  # the rest of the line after the cursor
    crossfile: bool


@dataclass
class Score:
    exact: int = 0
    #: Per target, in the order every row scores them (so rows can be compared target by target).
    hits: list[int] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)
    context_chars: list[int] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)
    gather_s: list[float] = field(default_factory=list)


def imported_from_package(path: Path, text: str, root: Path, package: Path) -> set[str]:
    """Names the module binds from other modules of its own package."""
    names = set()
    for imported in parse_imports(text):
        if imported.name is None:
            continue
        found = resolve(imported.module, path, root)
        home = found.file or found.folder
        if home is not None and home != path and home.is_relative_to(package):
            names.add(imported.alias)
    return names


def pick_targets(root: Path, packages: list[Path], targets: int, controls: int, cut: int, seed: int) -> list[Target]:
    """Lines using a name from another module of the package, and control lines using none, spread over packages.
    In Python the names are those a module imports from its package; in other languages those another file of the
    package defines and this one does not (compiled JavaScript reaches them as `module_1.Name`)."""
    rng = random.Random(seed)
    cross: dict[Path, list[Target]] = {}
    plain: dict[Path, list[Target]] = {}
    for package in packages:
        files = sorted(p for p in package.rglob("*") if p.suffix in (".py", ".js"))
        defined = defined_in(files)
        for path in files:
            grammar = languages.grammar_for(path.name)
            assert grammar is not None
            text = path.read_text(errors="replace")
            if path.suffix == ".py":
                names = imported_from_package(path, text, root, package)
            else:
                names = {name for name, where in defined.items() if path not in where}
            tree = grammar.parse(text.encode())
            offset = 0
            for number, line in enumerate(text.split("\n")):
                start, offset = offset, offset + len(line) + 1
                body = line.strip()
                if len(body) < cut + 6 or not line.startswith(" ") or not code_line(tree, number, line):
                    continue
                cursor = start + len(line) - len(line.lstrip()) + cut
                target = Target(path, text[:cursor] + text[start + len(line) :], cursor, line[cursor - start :], False)
                if names & set(_WORD.findall(body)):
                    cross.setdefault(package, []).append(dataclasses.replace(target, crossfile=True))
                elif re.search("[A-Za-z_]{3}", body):  # code, not a table of numbers
                    plain.setdefault(package, []).append(target)
    return spread(cross, targets, rng) + spread(plain, controls, rng)


def defined_in(files: list[Path]) -> dict[str, set[Path]]:
    """The files of a package that define each name (classes and functions of at least 4 characters)."""
    defined: dict[str, set[Path]] = {}
    for path in files:
        grammar = languages.grammar_for(path.name)
        if grammar is None:
            continue
        source = path.read_bytes()
        for definition in grammar.symbols(grammar.parse(source), source).definitions:
            if definition.kind in ("class", "function") and len(definition.name) >= 4:
                defined.setdefault(definition.name, set()).add(path)
    return defined


def spread(lines: dict[Path, list[Target]], count: int, rng: random.Random) -> list[Target]:
    """`count` lines drawn evenly from the packages."""
    chosen: list[Target] = []
    per_package = -(-count // max(1, len(lines)))
    for package in sorted(lines):
        chosen += rng.sample(lines[package], min(per_package, len(lines[package])))
    return chosen[:count]


def code_line(tree: tree_sitter.Tree, number: int, line: str) -> bool:
    """A line of statements: not in a string, a comment, an import or a decorator (ASCII lines only, where a
    column is a byte)."""
    if not line.isascii() or "require(" in line:
        return False
    column = len(line) - len(line.lstrip())
    node: tree_sitter.Node | None = tree.root_node.descendant_for_point_range((number, column), (number, column))
    while node is not None:
        if any(word in node.type for word in ("string", "comment", "import", "decorator")):
            return False
        node = node.parent
    return True


def similarity(suggested: str, truth: str) -> float:
    return difflib.SequenceMatcher(None, suggested.strip(), truth.strip()).ratio()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=60, help="cross-file lines")
    parser.add_argument("--controls", type=int, default=20, help="lines that use no name from another module")
    parser.add_argument("--js-targets", type=int, default=32, help="cross-file lines of the JavaScript packages")
    parser.add_argument("--js-controls", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cut", type=int, default=4, help="characters of the line given, past the indentation")
    parser.add_argument("--budget-ms", type=int, default=3000, help="time budget of a single-line completion")
    parser.add_argument("--context-chars", type=int, default=CompletionConfig().context_chars)
    parser.add_argument("--rows", help="the rows to run, comma-separated (default: every row)")
    parser.add_argument("--plot", type=Path, help="draw the tables as a picture (matplotlib) to this PNG")
    parser.add_argument("--replot", type=Path, help="the printed output of an earlier run: plot it, run nothing")
    args = parser.parse_args()
    if args.replot is not None:
        assert args.plot is not None, "--replot needs --plot"
        plot(parse_tables(args.replot.read_text()), args.plot)
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        packages = []
        for name in PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                continue
            source = Path(next(iter(spec.submodule_search_locations)))
            copy = root / source.name
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
            packages.append(copy)
        python = pick_targets(root, packages, args.targets, args.controls, args.cut, args.seed)
        scripts = []
        for folder_name in JS_PACKAGES:
            source = REPO / folder_name
            if source.is_dir():
                copy = root / source.parts[-3]  # node_modules/<package>/lib/common
                shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.map", "*.d.ts"))
                scripts.append(copy)
        javascript = pick_targets(root, scripts, args.js_targets, args.js_controls, args.cut, args.seed)
        printed = run(root, packages + scripts, python + javascript, args)
        if args.plot is not None:
            plot(parse_tables(printed), args.plot)


def run(root: Path, packages: list[Path], targets: list[Target], args: argparse.Namespace) -> str:
    crossfile = sum(t.crossfile for t in targets)
    print(
        f"{crossfile} cross-file lines and {len(targets) - crossfile} control lines from "
        f"{', '.join(p.name for p in packages)}; cut after {args.cut} characters; context budget {args.context_chars}"
    )
    # The full window with its context answers: the short first window that answers at once at a cold place (each
    # target is one) has no workspace context by design, and would measure only the window.
    config = dataclasses.replace(
        CompletionConfig(), multiline="never", time_budget_ms=args.budget_ms, first_window_chars=0
    )
    model = LocalModel(locate_model(ModelConfig()), ModelConfig())
    engine = CompletionEngine(model, dataclasses.replace(config, reuse_suggestions=False))
    with tempfile.TemporaryDirectory() as folder:
        index = CodeIndex(root, Path(folder) / "index.db")
        started = time.perf_counter()
        index.refresh()
        built = index.status()
        print(f"index: {built.files} files, {built.chunks} chunks in {time.perf_counter() - started:.1f} s")

        def lookup(names: list[str]) -> list[tuple[str, str, int, str]]:
            return [(c.name, c.path, c.start_line, c.text) for c in index.definitions(names)]

        def neighbours(key: str, query: str, exclude: str | None) -> list[tuple[str, int, str]]:
            return [(c.path, c.start_line, c.text) for c in index.search(query, 6, exclude)]

        landed = frozenset({"imports", "index", "recent", "scopes"})
        contexts = {
            "imports": WorkspaceContext(root, sources=landed),
            "index": WorkspaceContext(root, index=lookup, sources=frozenset({"index", "scopes"})),
            "cove": WorkspaceContext(root, index=lookup, sources=landed),
            "recent": WorkspaceContext(root, sources=frozenset({"recent", "scopes"})),
            "lookup": WorkspaceContext(root, sources=frozenset({"recent", "scopes"})),
            "neighbours": WorkspaceContext(root, neighbours=neighbours, sources=frozenset({"neighbours", "scopes"})),
            "all": WorkspaceContext(root, index=lookup, neighbours=neighbours, sources=SOURCES),
        }
        session = Session(index, targets, [contexts["recent"], contexts["all"]], contexts["lookup"])
        baseline = BaselineContext(root)
        sources: dict[str, Callable[[Target, int], str] | None] = {
            "none": None,
            "baseline": lambda t, anchor: baseline.gather(t.path.as_uri(), t.text, anchor, args.context_chars),
        }
        for name, context in contexts.items():
            sources[name] = functools.partial(gathered_by, context, args.context_chars)
        if args.rows:
            wanted = args.rows.split(",")
            assert set(wanted) <= set(sources), f"--rows: known rows are {', '.join(sources)}"
            sources = {name: sources[name] for name in wanted}
        return score(targets, sources, engine, model, config, session.before)


class Session:
    """What the user saw before each target, fed to the contexts' rings: the places of the targets before it in the
    same package (`seen`), and for `lookup` also the definition of one name the cut line uses."""

    PLACES = 6

    def __init__(
        self, index: CodeIndex, targets: list[Target], seen: list[WorkspaceContext], lookup: WorkspaceContext
    ) -> None:
        self.index, self.targets, self.seen, self.lookup = index, targets, seen, lookup
        self.rng = random.Random(7)

    def before(self, at: int) -> None:
        target = self.targets[at]
        package = target.path.parent
        earlier = [t for t in self.targets[:at] if t.path.parent == package][-self.PLACES :]
        for context in (*self.seen, self.lookup):
            context.recent = RecentCode()
            for place in earlier:
                line = place.text.count("\n", 0, place.offset)
                context.recent.note_seen(place.path.as_uri(), place.text, line, "viewed")
        definition = self._definition_used(target)
        if definition is not None:
            text = (self.index.root / definition.path).read_text(errors="replace")
            uri = (self.index.root / definition.path).as_uri()
            self.lookup.recent.note_seen(uri, text, definition.start_line - 1, "viewed")

    def _definition_used(self, target: Target) -> Chunk | None:
        """The chunk defining a name of the target's full line in another file (a random one of its package for a
        control line)."""
        start = target.text.rfind("\n", 0, target.offset) + 1
        line = target.text[start : target.offset] + target.truth
        own = str(target.path.relative_to(self.index.root))
        found = [c for c in self.index.definitions(_WORD.findall(line)) if c.path != own]
        if found and target.crossfile:
            return found[0]
        others = self.index.search(line, 20, own)
        return self.rng.choice(others) if others else None


def gathered_by(context: WorkspaceContext, budget: int, target: Target, anchor: int) -> str:
    return context.gather(target.path.as_uri(), target.text, anchor, budget, target.offset)


def score(
    targets: list[Target],
    sources: dict[str, Callable[[Target, int], str] | None],
    engine: CompletionEngine,
    model: LocalModel,
    config: CompletionConfig,
    before: Callable[[int], None],
) -> str:
    scores = {(name, group(t), t.crossfile): Score() for name in sources for t in targets}
    for at, target in enumerate(tqdm(targets, desc="targets", file=sys.stderr)):
        before(at)
        anchor = choose_anchor(line_starts(target.text), target.offset, None, config.max_prefix_chars)
        for name, source in sources.items():
            tally = scores[name, group(target), target.crossfile]
            context = None
            if source is not None:
                started = time.perf_counter()
                gathered = source(target, anchor)
                tally.gather_s.append(time.perf_counter() - started)
                tally.context_chars.append(len(gathered))
                tally.context_tokens.append(len(model.tokenize(gathered)) if gathered else 0)
                context = lambda _anchor, text=gathered: text  # noqa: E731 - one value per target
            document = f"{target.path}#{name}"  # each run keeps its own KV state
            completion = engine.complete(CompletionRequest(document, target.text, target.offset, context=context))
            hit = completion.text.strip() == target.truth.strip()
            tally.exact += hit
            tally.hits.append(int(hit))
            tally.similarity.append(similarity(completion.text, target.truth))
        model.clear()
    return report(scores, targets)


def group(target: Target) -> str:
    return "python" if target.path.suffix == ".py" else "javascript"


def report(scores: dict[tuple[str, str, bool], Score], targets: list[Target]) -> str:
    """One table per language, printed; returns what it printed."""
    lines: list[str] = []

    def print(line: str) -> None:
        sys.stdout.write(line + "\n")
        lines.append(line)

    for language in dict.fromkeys(group(t) for t in targets):
        counts = {kind: sum(t.crossfile == kind and group(t) == language for t in targets) for kind in (True, False)}
        print(
            f"\n{language:<10} {'cross exact':>12} {'cross sim':>10} {'ctrl exact':>11} {'ctrl sim':>9}"
            f" {'chars':>6} {'tokens':>7} {'gather p50':>11} {'p95':>7}"
        )
        for name in dict.fromkeys(name for name, _, _ in scores):
            cross = scores.get((name, language, True), Score())
            control = scores.get((name, language, False), Score())
            gather = sorted(cross.gather_s + control.gather_s)
            chars, tokens = cross.context_chars + control.context_chars, cross.context_tokens + control.context_tokens
            print(
                f"{name:<10} {pct(cross.exact, counts[True]):>12} {mean(cross.similarity):>10.3f}"
                f" {pct(control.exact, counts[False]):>11} {mean(control.similarity):>9.3f}"
                f" {mean(chars):>6.0f} {mean(tokens):>7.0f}"
                + (
                    f" {gather[len(gather) // 2] * 1000:>8.2f} ms {gather[int(len(gather) * 0.95)] * 1000:>4.1f}"
                    if gather
                    else f" {'-':>11} {'-':>7}"
                )
            )
        names = list(dict.fromkeys(name for name, _, _ in scores))
        if "none" in names and len(names) > 1:
            print(f"{language + ' vs none':<18} {'cross sim':>24} {'cross exact (lines)':>24} {'ctrl sim':>24}")
            for name in names[1:]:
                cells = []
                for crossfile, metric in ((True, "similarity"), (True, "hits"), (False, "similarity")):
                    row = getattr(scores.get((name, language, crossfile), Score()), metric)
                    base = getattr(scores.get(("none", language, crossfile), Score()), metric)
                    cells.append(paired_difference(row, base, total=metric == "hits"))
                print(f"{name:<18} {cells[0]:>24} {cells[1]:>24} {cells[2]:>24}")
    print(
        "exact: the suggestion is the rest of the line; sim: edit similarity (difflib ratio) with it; vs none: the\n"
        "difference target by target, with a 90% bootstrap interval (an interval holding 0 is no measured effect)"
    )
    return "\n".join(lines)


def paired_difference(row: list[float] | list[int], base: list[float] | list[int], total: bool = False) -> str:
    """The mean (or, with `total`, summed) difference of paired scores with its 90% bootstrap interval."""
    if not row or len(row) != len(base):
        return "-"
    differences = [a - b for a, b in zip(row, base, strict=True)]
    scale = len(differences) if total else 1
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(differences, k=len(differences))) * scale for _ in range(2000))
    low, high = means[100], means[1899]
    value = statistics.fmean(differences) * scale
    if total:
        return f"{value:+.0f} [{low:+.0f}, {high:+.0f}]"
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"


def parse_tables(text: str) -> dict[str, list[tuple[str, float, float, float]]]:
    """The printed tables: per language, (context, cross exact %, cross sim, control sim) per row."""
    tables: dict[str, list[tuple[str, float, float, float]]] = {}
    language = ""
    for line in text.split("\n"):
        words = line.split()
        if len(words) > 2 and words[1:3] == ["cross", "exact"]:
            language = words[0]
            tables[language] = []
        elif language and len(words) >= 7 and words[2].endswith("%"):
            tables[language].append((words[0], float(words[2].rstrip("%")), float(words[3]), float(words[6])))
    return tables


def plot(tables: dict[str, list[tuple[str, float, float, float]]], path: Path) -> None:
    """Edit similarity (cross-file and control lines) and cross-file exact match per context, a panel per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4), squeeze=False)
    for axis, (language, rows) in zip(axes[0], tables.items(), strict=True):
        names = [row[0] for row in rows]
        positions = range(len(rows))
        axis.bar([x - 0.2 for x in positions], [row[2] for row in rows], 0.4, label="cross-file similarity")
        axis.bar([x + 0.2 for x in positions], [row[3] for row in rows], 0.4, label="control similarity")
        axis.set_xticks(list(positions), names, rotation=25, fontsize=8)
        axis.set_ylim(0.4, 0.75)
        axis.set_title(f"{language}: edit similarity (bars), cross-file exact % (dots)")
        exact = axis.twinx()
        exact.plot(list(positions), [row[1] for row in rows], "ko")
        exact.set_ylim(0, 40)
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    sys.stdout.write(f"plot: {path}\n")


def pct(hits: int, total: int) -> str:
    return f"{hits}/{total} {100 * hits / max(1, total):.0f}%"


def mean(values: list[float] | list[int]) -> float:
    return statistics.fmean(values) if values else 0.0


if __name__ == "__main__":
    main()
