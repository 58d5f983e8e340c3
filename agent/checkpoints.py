"""Checkpoints that undo anything the agent did: before every step that may write (an edit, a new file, a command),
the workspace's files are committed to a shadow git repository kept outside the workspace (its own `.git` is never
touched), so a command's deletions and rewrites are undone as well as the file tools' edits.

What is snapshotted is what git would track: tracked and untracked files, not those the workspace's `.gitignore`
files exclude, and not files larger than MAX_FILE_BYTES (both said in the checkpoint). Restoring a checkpoint first
snapshots the present (so a restore can itself be undone), then makes the workspace's snapshotted files what they
were: changed ones rewritten, deleted ones back, ones created since removed; ignored and large files are left as they
are. The shadow repository lives under `$XDG_DATA_HOME/cove/checkpoints/`, so checkpoints outlive the daemon.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cove.errors import InputError
from cove.runtime import daemon_paths

#: Files above this size are left out of checkpoints (and named in them).
MAX_FILE_BYTES = 10 << 20
#: The branch of the shadow repository that holds the checkpoints, newest last.
BRANCH = "refs/heads/checkpoints"
_SEPARATOR = "\x1f"
#: The file in the shadow repository that remembers the checkpoint last restored (for `undo` again).
RESTORED = "cove-restored"


@dataclass(frozen=True)
class Checkpoint:
    """One snapshot: its commit, when and why it was taken, and what differed from the one before."""

    commit: str
    number: int
    session: str
    step: int
    tool: str
    when: str
    #: Files that differ from the previous checkpoint ("M path", "A path", "D path").
    changed: tuple[str, ...] = ()
    #: Files left out for their size.
    left_out: tuple[str, ...] = ()


class Checkpoints:
    """The checkpoints of one workspace, in its shadow repository (created on first use)."""

    def __init__(self, workspace: Path, data: Path | None = None) -> None:
        self.workspace = workspace.resolve()
        base = data if data is not None else daemon_paths().data
        key = hashlib.sha256(str(self.workspace).encode()).hexdigest()[:16]
        self.git_dir = base / "checkpoints" / key

    def snapshot(self, session: str, step: int, tool: str) -> Checkpoint | None:
        """Commit the workspace's files as they are now; None when nothing changed since the last checkpoint (the
        last one then stands for this step too). One walk of the workspace finds what changed (`git status`, with
        the index's stat cache), and only those files are looked at for their size."""
        self._ensure()
        changes, large = self._changes()
        if not changes and self._head() is not None:
            return None
        self._git("add", "--all", "--", ".", *[f":(exclude,literal){path}" for path in large])
        message = _SEPARATOR.join([session, str(step), tool, "\n".join(large)])
        self._git("commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
        commit, when = self._git("log", "-1", "--format=%H %cI", "HEAD").split()
        count = int(self._git("rev-list", "--count", "HEAD").strip())
        return Checkpoint(commit, count, session, step, tool, when, tuple(changes), tuple(large))

    def _changes(self) -> tuple[list[str], list[str]]:
        """What differs from the last checkpoint ("M path", "A path", "D path"), and the files left out for their
        size (new or changed ones above MAX_FILE_BYTES, and those left out before)."""
        status = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
        changes, large = [], []
        for entry in filter(None, status.split("\0")):
            code, path = entry[:2], entry[3:]
            if "D" not in code and _too_large(self.workspace / path):
                large.append(path)
                continue
            kind = "A" if code == "??" else "D" if "D" in code else (code[1] if code[1] != " " else code[0])
            changes.append(f"{'A' if kind == '?' else kind} {path}")
        return changes, large

    def entries(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first, numbered from 1."""
        if self._head() is None:
            return []
        log = self._git("log", "--reverse", "--no-renames", "--name-status", "--format=%x1d%H%x1e%cI%x1e%B%x1e", BRANCH)
        found: list[Checkpoint] = []
        for number, record in enumerate(filter(None, log.split("\x1d")), start=1):
            commit, when, message, names = (record.split("\x1e") + [""] * 4)[:4]
            session, step, tool, large = (message.strip("\n").split(_SEPARATOR) + [""] * 4)[:4]
            changed = tuple(" ".join(line.split("\t", 1)) for line in names.strip().splitlines() if "\t" in line)
            found.append(Checkpoint(commit, number, session, int(step or 0), tool, when, changed, tuple(large.split())))
        return found

    def restore(self, number: int) -> tuple[Checkpoint, Checkpoint | None]:
        """Make the workspace's snapshotted files what they were at checkpoint `number`; the present is snapshotted
        first (returned second: restoring it undoes this restore)."""
        checkpoints = self.entries()
        if not 1 <= number <= len(checkpoints):
            raise InputError(f"no checkpoint {number}: this workspace has {len(checkpoints)} (`cove checkpoints`)")
        target = checkpoints[number - 1]
        before = self.snapshot("restore", 0, f"before restoring checkpoint {number}")
        self._git("read-tree", "--reset", "-u", target.commit)
        (self.git_dir / RESTORED).write_text(str(number))
        return target, before

    def undo(self) -> tuple[Checkpoint, Checkpoint | None]:
        """Restore the workspace as it was before the agent's last step that changed it; right after an undo, the
        step before that one (and so on)."""
        steps = [c for c in self.entries() if c.session != "restore"]
        if not steps:
            raise InputError(f"no checkpoint of {self.workspace} yet: the agent has not changed anything here")
        target = steps[-1]
        marker = self.git_dir / RESTORED
        if marker.is_file():
            restored = int(marker.read_text() or 0)
            if self._tree_now() == self._git("rev-parse", f"{self.entries()[restored - 1].commit}^{{tree}}").strip():
                older = [c for c in steps if c.number < restored]
                if not older:
                    raise InputError("nothing older to undo: the workspace is at its first checkpoint")
                target = older[-1]
        return self.restore(target.number)

    def _tree_now(self) -> str:
        """The tree the workspace's files would make now (staged in the shadow index, not committed)."""
        _, large = self._changes()
        self._git("add", "--all", "--", ".", *[f":(exclude,literal){path}" for path in large])
        return self._git("write-tree").strip()

    def _head(self) -> str | None:
        done = self._run("rev-parse", "--verify", "--quiet", BRANCH)
        return done.stdout.strip() if done.returncode == 0 else None

    def _ensure(self) -> None:
        if not (self.git_dir / "HEAD").is_file():
            self.git_dir.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet")
            self._git("config", "gc.auto", "0")
            self._git("symbolic-ref", "HEAD", BRANCH)

    def _git(self, *arguments: str) -> str:
        done = self._run(*arguments)
        if done.returncode != 0:
            raise InputError(f"checkpoint: git {arguments[0]} failed: {done.stderr.strip()[:500]}")
        return done.stdout

    def _run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(self.workspace),
            "GIT_AUTHOR_NAME": "Cove",
            "GIT_AUTHOR_EMAIL": "cove@localhost",
            "GIT_COMMITTER_NAME": "Cove",
            "GIT_COMMITTER_EMAIL": "cove@localhost",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        return subprocess.run(
            ["git", *arguments], cwd=self.workspace, env=env, capture_output=True, text=True, check=False
        )


def _too_large(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size > MAX_FILE_BYTES
    except OSError:
        return False
