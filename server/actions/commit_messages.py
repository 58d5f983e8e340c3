"""A commit message for the staged changes, written by the local model.

The prompt shows the repository's last commits as pairs a base model can continue: a commit's changed lines, then
its subject; then the staged changes' lines and an open subject, which ends at the line's end. The examples teach
the repository's style; a model of 270M parameters copies them often, which the benchmark
(benchmarks/local_actions.py) counts. The user reviews the subject where it lands: git's editor
(`cove commit-message --commit` runs `git commit --edit`) or the editor's commit box.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

from cove.errors import InputError
from cove.inference.completion.engine import WritingRequest

#: Characters of the staged changes' lines, of each example's, and how many examples.
DIFF_CHARS = 1200
EXAMPLE_CHARS = 400
EXAMPLES = 3
#: A subject longer than this is cut at a word (git's own advice is 50, tools warn past 72).
SUBJECT_CHARS = 72


def _git(root: Path, *arguments: str) -> str:
    try:
        done = subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as err:
        raise InputError("git is not installed (needed for a commit message)") from err
    if done.returncode != 0:
        raise InputError(f"git {arguments[0]} failed in {root}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def changed_lines(diff: str, limit: int) -> str:
    """The file names and the changed lines of a unified diff (no context lines, no blank changes), cut."""
    kept = [
        line
        for line in diff.split("\n")
        if line.startswith(("+++", "---")) or (line.startswith(("+", "-")) and line[1:].strip())
    ]
    return "\n".join(kept)[:limit]


def staged_changes(root: Path) -> tuple[str, list[tuple[str, str]]]:
    """The staged changes' lines, and the last commits as (changed lines, subject), oldest first, of the repository
    at `root`; InputError when it is not one or nothing is staged."""
    _git(root, "rev-parse", "--git-dir")
    diff = _git(root, "diff", "--cached", "--no-color", "--no-ext-diff")
    if not diff.strip():
        raise InputError("nothing is staged: `git add` the changes to describe first")
    return changed_lines(diff, DIFF_CHARS), history(root, "HEAD")


def history(root: Path, revision: str) -> list[tuple[str, str]]:
    """The last EXAMPLES commits up to `revision` (merges left out) as (changed lines, subject), oldest first."""
    try:
        listed = _git(root, "log", "--no-merges", "--format=%H %s", f"-{EXAMPLES}", revision)
    except InputError:  # a repository without commits yet
        return []
    examples = []
    for line in reversed(listed.strip().split("\n") if listed.strip() else []):
        sha, _, subject = line.partition(" ")
        shown = _git(root, "show", "--format=", "--no-color", "--no-ext-diff", sha)
        examples.append((changed_lines(shown, EXAMPLE_CHARS), subject))
    return examples


def commit_request(diff: str, examples: list[tuple[str, str]], document: str) -> WritingRequest:
    """The prompt that ends where the subject goes."""
    shots = "".join(f"Diff:\n{lines}\nCommit message: {subject}\n\n" for lines, subject in examples)
    prefix = f"{shots}Diff:\n{diff}\nCommit message:"
    return WritingRequest(document, prefix, stop_at=("\n",), max_tokens=32, budget_s=5.0)


def clean_subject(text: str) -> str:
    """The subject as committed: one line, no stray quotes, at most SUBJECT_CHARS (cut at a word)."""
    subject = " ".join(text.replace("\\n", " ").split()).strip(" '\"")
    if len(subject) > SUBJECT_CHARS:
        subject = subject[:SUBJECT_CHARS].rsplit(" ", 1)[0]
    return subject


async def write_subject(
    diff: str, examples: list[tuple[str, str]], document: str, write: Callable[[WritingRequest], Awaitable[str]]
) -> str:
    """The subject for `diff`; one that repeats an example (a small model often does) is asked for again without
    the examples, started with the same first word (the repository's style of verb)."""
    subject = clean_subject(await write(commit_request(diff, examples, document)))
    if subject and subject in {example for _, example in examples}:
        first = subject.split()[0]
        again = commit_request(diff, [], document)
        again = dataclasses.replace(again, prefix=f"{again.prefix} {first}")
        subject = clean_subject(f"{first} {await write(again)}")
    return subject


async def write_commit_message(root: Path, write: Callable[[WritingRequest], Awaitable[str]]) -> str:
    """A subject for what is staged in the repository at `root`; InputError when there is nothing to describe."""
    diff, examples = await asyncio.to_thread(staged_changes, root)
    subject = await write_subject(diff, examples, f"{root}#commit-message", write)
    if not subject:
        raise InputError("the local model wrote no commit message for this diff; write it yourself this time")
    return subject
