"""`cove index`: build (or bring up to date) the project's code index in the daemon with a progress bar, or search
it; and the index's line in `cove doctor`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cove.config import find_project_root
from cove.protocol.params import IndexOpen, IndexSearch, IndexStatusParams


def cmd_index(args: argparse.Namespace) -> int:
    """Index the project at `args.directory` (its root: the folder with .git or .cove above it), showing progress;
    with `--search`, print the best matching chunks instead."""
    from tqdm import tqdm

    from cove.daemon_client import ensure_daemon
    from cove.runtime import daemon_paths

    start = Path(args.directory).resolve()
    root = str(find_project_root(start) or start)
    with ensure_daemon(daemon_paths()) as client:
        status = client.call(IndexOpen(root))
        if args.search:
            for chunk in client.call(IndexSearch(root, args.search, args.limit)):
                title = f"{chunk['kind']} {chunk['name']}".strip()
                print(f"{chunk['path']}:{chunk['start_line']}-{chunk['end_line']}: {title}")
            return 0
        with tqdm(total=max(status["total"], 1), unit="file", desc=f"indexing {Path(root).name}", leave=False) as bar:
            while status["building"]:
                bar.total = max(status["total"], 1)
                bar.n = status["done"]
                bar.refresh()
                time.sleep(0.2)
                status = client.call(IndexStatusParams(root))
    if status["error"]:
        print(f"the index of {root} stopped: {status['error']}")
        return 1
    print(describe(status))
    return 0


def describe(status: dict[str, object]) -> str:
    """One line for a person: what is indexed, when, and where."""
    updated = float(str(status["updated"] or 0))
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if updated else "never"
    size = int(str(status["bytes"])) / 1e6
    return (
        f"{status['root']}: {status['files']} files, {status['chunks']} chunks, {status['references']} references;"
        f" last update {when}; {status['database']} ({size:.1f} MB)"
    )


def doctor_line(project: Path | None, data: Path) -> str:
    """The project's index as its database holds it (read without the daemon, which may not be running)."""
    from dataclasses import asdict

    from cove.agent.code_index import CodeIndex, CodeIndexError, database_for

    if project is None:
        return "no project here (a folder with .git or .cove): nothing to index"
    database = database_for(data, project.resolve())
    if not database.exists():
        return f"{project}: not indexed yet (`cove index` builds it; an editor starts it on opening the project)"
    try:
        index = CodeIndex(project, database)
    except CodeIndexError as err:
        return str(err)
    try:
        return describe(asdict(index.status()))
    finally:
        index.close()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`cove index [-C DIR] [--search WORDS] [--limit N]`."""
    parser = sub.add_parser("index", help="build the project's code index (in the daemon), or search it")
    parser.add_argument("-C", dest="directory", default=".", help="a folder of the project (default: the current one)")
    parser.add_argument("--search", metavar="WORDS", help="print the chunks that best match these words")
    parser.add_argument("--limit", type=int, default=10, help="how many chunks --search prints")
    parser.set_defaults(run=cmd_index)
