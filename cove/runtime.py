"""Where the daemon keeps its socket, lock and database: one place for the daemon and its clients."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cove.errors import CoveError


@dataclass(frozen=True)
class DaemonPaths:
    """The daemon's files for one user."""

    runtime: Path
    data: Path

    @property
    def socket(self) -> Path:
        return self.runtime / "daemon.sock"

    @property
    def lock(self) -> Path:
        return self.runtime / "daemon.lock"

    @property
    def database(self) -> Path:
        return self.data / "memory.db"


def daemon_paths(env: Mapping[str, str] | None = None) -> DaemonPaths:
    """`$XDG_RUNTIME_DIR/cove` (else a private folder under /tmp) and `$XDG_DATA_HOME/cove`."""
    env = os.environ if env is None else env
    runtime_base = env.get("XDG_RUNTIME_DIR")
    runtime = Path(runtime_base) / "cove" if runtime_base else Path("/tmp") / f"cove-{os.getuid()}"
    data = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cove"
    return DaemonPaths(runtime, data)


def state_directory(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/cove`: what Cove keeps for the user between runs (stats, reviews), not shared."""
    env = os.environ if env is None else env
    base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return private_directory(base / "cove")


def private_directory(path: Path) -> Path:
    """Create `path` as a 0700 directory of this user, or check that it is one (a shared /tmp is hostile)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as err:
        raise CoveError(f"cannot create {path}: {err.strerror}") from err
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise CoveError(f"{path} is not a directory owned by you; remove it or set XDG_RUNTIME_DIR")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


class AlreadyRunning(CoveError):
    """Another daemon holds the lock."""


def take_lock(paths: DaemonPaths) -> TextIO:
    """Hold the per-user lock for the daemon's lifetime; AlreadyRunning when another daemon has it."""
    private_directory(paths.runtime)
    handle = paths.lock.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(
            f"a Cove daemon is already running (lock {paths.lock}); `cove daemon stop` ends it"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
