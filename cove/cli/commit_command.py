"""`cove commit-message`: a subject for the staged changes from the completion model
(server/actions/commit_messages.py), printed, or with `--commit` given to `git commit --edit`, which opens git's
editor on it for the user's review."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

from cove.config import find_project_root, load_config


def cmd_commit_message(args: argparse.Namespace) -> int:
    """Write a subject for what is staged in the repository at `args.directory`; print it or commit with it."""
    from cove.inference.completion.engine import CompletionEngine, WritingRequest
    from cove.inference.model.local_model import open_local_model
    from cove.server.actions.commit_messages import write_commit_message

    root = Path(args.directory).resolve()
    config = load_config(find_project_root(root)).config
    # Loaded here only when it serves (by default the daemon's model does, loaded once for every client).
    engine = CompletionEngine(lambda: open_local_model(config.model), config.completion)
    engine.reroute(config)

    async def write(request: WritingRequest) -> str:
        return (await asyncio.to_thread(engine.write, request)).text

    try:
        subject = asyncio.run(write_commit_message(root, write))
    finally:
        engine.close()
    if not args.commit:
        print(subject)
        return 0
    done = subprocess.run(["git", "commit", "--edit", "-m", subject], cwd=root, check=False)
    if done.returncode != 0:
        print(f"cove: git commit exited with {done.returncode}; nothing was committed by Cove", file=sys.stderr)
    return done.returncode


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`cove commit-message [--commit] [-C DIR]`."""
    parser = sub.add_parser("commit-message", help="write a commit message for the staged changes (local model)")
    parser.add_argument("--commit", action="store_true", help="commit with it, reviewed first in git's editor")
    parser.add_argument("-C", dest="directory", default=".", help="the repository (default: the current folder)")
    parser.set_defaults(run=cmd_commit_message)
