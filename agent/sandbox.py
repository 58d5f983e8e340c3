"""The agent's commands in a bubblewrap sandbox: a guarantee where deny patterns are only a courtesy.

Inside, the workspace is writable; the system (`/usr`, `/etc` without its secrets, `/opt`) and the toolchains on
PATH (the interpreter and virtualenvs) are read-only; `/tmp` is private; the rest of the home folder is not there,
and secrets (`~/.ssh`, `~/.aws`, ...) and Cove's own folders (config, state, the daemon's socket) stay hidden even
inside a path the user adds. The network is off by default (a seccomp filter refuses every socket but Unix ones),
or a namespace of its own with only loopback, or the host's. The command gets new PID, IPC, UTS and user
namespaces and dies with its parent, so a timeout or a cancel ends every descendant; CPU time, address space,
processes and file size are limited (`prlimit`); the environment is cut down to an allow-list.

Where bubblewrap cannot run, `unavailable()` says why; the loop then asks before every command in every mode
unless `[sandbox] required = false` (agent/loop.py).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import struct
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cove.config import SandboxConfig
from cove.runtime import daemon_paths, state_directory

#: Variables a command gets from the daemon's environment (besides `[sandbox] env`): no tokens, keys or agents.
ALLOWED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TZ",
    "COLUMNS",
    "NO_COLOR",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "CI",
)
#: Secrets under the home folder, hidden even when a parent is made visible.
HOME_SECRETS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".docker",
    ".kube",
    ".password-store",
    ".local/share/keyrings",
)
#: Secrets of the system, hidden under the read-only /etc.
SYSTEM_SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private")
#: The system's folders, read-only (those that are symbolic links, as on merged-/usr systems, are links inside too).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")


@dataclass(frozen=True)
class Sandbox:
    """How a command runs for one workspace: `command()` gives the argv that runs it sandboxed, `environment()` the
    environment it gets."""

    config: SandboxConfig
    workspace: Path
    home: Path
    #: Cove's own folders (config, state, runtime), never visible inside.
    hidden: tuple[Path, ...]
    #: Folders of the toolchains on PATH and the interpreters, read-only inside.
    toolchains: tuple[Path, ...]

    @staticmethod
    def for_workspace(config: SandboxConfig, workspace: Path, env: Mapping[str, str] | None = None) -> Sandbox:
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home()).resolve()
        return Sandbox(config, workspace.resolve(), home, _cove_folders(env), _toolchains(env, home, workspace))

    def command(self, argv: list[str], cwd: Path) -> list[str]:
        """`argv` run in the sandbox with `cwd` (inside the workspace) as its working folder."""
        config = self.config
        args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "cove-sandbox"]
        if config.network == "full":
            args.append("--share-net")
        for folder in SYSTEM:
            path = Path(folder)
            if path.is_symlink():
                args += ["--symlink", str(path.readlink()), folder]
            elif path.is_dir():
                args += ["--ro-bind", folder, folder]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        if not _under(self.home, [Path(f) for f in SYSTEM]):
            args += ["--tmpfs", str(self.home)]
        visible = [Path(f) for f in SYSTEM if Path(f).is_dir()]
        for path in self.toolchains:
            args += ["--ro-bind", str(path), str(path)]
            visible.append(path)
        for spec, flag in [(p, "--ro-bind") for p in config.read] + [(p, "--bind") for p in config.write]:
            path = self._expand(spec)
            if path.exists():
                args += [flag, str(path), str(path)]
                visible.append(path)
        args += ["--bind", str(self.workspace), str(self.workspace)]
        visible.append(self.workspace)
        for secret in [*(self.home / s for s in HOME_SECRETS), *map(Path, SYSTEM_SECRETS), *self.hidden]:
            if secret.exists() and _under(secret, visible):
                args += ["--tmpfs", str(secret)] if secret.is_dir() else ["--ro-bind", "/dev/null", str(secret)]
        args += ["--chdir", str(cwd)]
        limits = [
            f"--cpu={config.cpu_s}",
            f"--as={config.memory_mb << 20}",
            f"--nproc={config.processes}",
            f"--fsize={config.file_size_mb << 20}",
        ]
        inner = ["prlimit", *limits, "--", *argv]
        # A shell that joins the processes' cgroup (where there is one), opens the network filter on fd 9 for
        # bwrap (network "none"), and becomes bwrap.
        group = pids_cgroup(config.processes)
        if config.network == "none":
            return [*_LAUNCH, str(group or ""), str(_no_network_filter()), *args, "--seccomp", "9", "--", *inner]
        return [*_LAUNCH, str(group or ""), "", *args, "--", *inner]

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The variables a command gets: the allow-list and `[sandbox] env`, present in `env`."""
        names = (*ALLOWED_ENV, *self.config.env)
        kept = {name: env[name] for name in names if name in env}
        kept["HOME"] = str(self.home)
        return kept

    def describe(self) -> str:
        """What confines a command, for its result and the approval prompt."""
        network = {"none": "no network", "loopback": "loopback only", "full": "the host's network"}
        return f"sandboxed: {network[self.config.network]}, only the workspace writable, home hidden"

    def _expand(self, spec: str) -> Path:
        path = Path(spec)
        if spec == "~" or spec.startswith("~/"):
            path = self.home / spec[2:]
        return path.resolve()


@functools.cache
def unavailable() -> str:
    """Why commands cannot be sandboxed on this machine ("" when they can), checked once per process."""
    if platform.system() == "Darwin":
        return "macOS has no bubblewrap (Seatbelt through sandbox-exec is not supported yet)"
    if platform.system() != "Linux":
        return f"no sandbox for {platform.system()}"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt install bubblewrap)"
    if shutil.which("prlimit") is None:
        return "prlimit is not installed (util-linux)"
    probe = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap does not run here: {err}"
    if done.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {done.stderr.strip() or done.returncode}"
    return ""


def sandbox_status(config: SandboxConfig) -> str:
    """One `cove doctor` line: whether the agent's commands are sandboxed here, how, and else what happens."""
    why = unavailable()
    if not why:
        version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        network = {"none": "no network", "loopback": "loopback only", "full": "the host's network"}[config.network]
        return f"ok  sandbox    {version}: agent commands run with {network}, only the workspace writable, home hidden"
    if config.required:
        return f"warn sandbox    {why}; every agent command will be asked for, in every mode"
    return f"warn sandbox    {why}; agent commands run unconfined ([sandbox] required = false)"


#: `sh -c SCRIPT sh CGROUP FILTER BWRAP...`: join CGROUP (if any), open FILTER on fd 9 (if any), exec bwrap.
_LAUNCH = [
    "/bin/sh",
    "-c",
    'group="$1"; filter="$2"; shift 2; [ -z "$group" ] || echo $$ > "$group/cgroup.procs"; '
    '[ -z "$filter" ] && exec "$@"; exec "$@" 9<"$filter"',
    "sh",
]


@functools.cache
def pids_cgroup(limit: int) -> Path | None:
    """For root, whom RLIMIT_NPROC does not bind: a pids cgroup (v1, or v2 where pids is enabled) that caps the
    processes of every sandboxed command at `limit` together; None for other users (the rlimit binds them) or where
    no such cgroup can be made."""
    if os.geteuid() != 0:
        return None
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").is_file():
            continue
        if base.name != "pids" and "pids" not in (base / "cgroup.subtree_control").read_text(errors="replace"):
            continue
        group = base / f"cove-sandbox-{limit}"
        try:
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(str(limit))
        except OSError:
            continue
        return group
    return None


def _under(path: Path, folders: list[Path]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


def _cove_folders(env: Mapping[str, str]) -> tuple[Path, ...]:
    """Cove's config, state, data (sessions, memory) and runtime (the daemon's socket) folders."""
    home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "cove"
    state = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "cove"
    daemon = daemon_paths(env)
    return tuple(p.resolve() for p in (config, state, daemon.data, daemon.runtime))


def _toolchains(env: Mapping[str, str], home: Path, workspace: Path) -> tuple[Path, ...]:
    """Folders to see read-only for the tools to run: the interpreters' prefixes and, for each PATH entry outside
    the system, its folder (its top folder under the home folder: ~/.pyenv for ~/.pyenv/shims)."""
    found: list[Path] = []
    candidates = [Path(sys.base_prefix), Path(sys.prefix)]
    candidates += [Path(entry) for entry in env.get("PATH", "").split(os.pathsep) if entry.startswith("/")]
    venv_config = workspace / ".venv" / "pyvenv.cfg"
    if venv_config.is_file():
        for line in venv_config.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                candidates.append(Path(value.strip()).parent)
    system = [Path(f) for f in SYSTEM]
    for candidate in candidates:
        path = candidate.resolve()
        if not path.is_dir() or _under(path, system) or _under(path, [workspace.resolve()]):
            continue
        if home in path.parents:
            path = home / path.relative_to(home).parts[0]
        if path != home and not _under(path, found):
            found = [f for f in found if not _under(f, [path])] + [path]
    return tuple(found)


@functools.cache
def _no_network_filter() -> Path:
    """A seccomp program (classic BPF) that fails `socket()` for every family but AF_UNIX with EACCES, written once."""
    arch, socket_nr = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}.get(platform.machine(), (0, -1))
    if socket_nr < 0:
        raise OSError(f"no network filter for {platform.machine()}: set [sandbox] network = 'loopback'")
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 13  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EACCES
    program = [
        (load, 0, 0, 4),  # 0: the architecture
        (jeq, 0, 6, arch),  # 1: another one: allow (8)
        (load, 0, 0, 0),  # 2: the syscall's number
        (jge, 3, 0, 0x40000000),  # 3: the x32 ABI: deny (7)
        (jeq, 0, 3, socket_nr),  # 4: not socket(): allow (8)
        (load, 0, 0, 16),  # 5: its first argument, the address family
        (jeq, 1, 0, 1),  # 6: AF_UNIX: allow (8)
        (ret, 0, 0, deny),  # 7
        (ret, 0, 0, allow),  # 8
    ]
    folder = state_directory() / "sandbox"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"no-network-{platform.machine()}.bpf"
    path.write_bytes(b"".join(struct.pack("<HBBI", *instruction) for instruction in program))
    return path
