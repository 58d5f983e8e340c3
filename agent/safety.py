"""What the agent may touch and run: workspace confinement, deny patterns that no mode overrides, approval modes.

Paths are resolved (symlinks followed) before they are checked, so neither `..` nor a symlink leads outside the
workspace. Commands are matched against deny patterns after normalising whitespace and quoting, so that
`sudo`, `rm -rf /` or `curl ... | sh` are refused however they are spelled.
"""

from __future__ import annotations

import enum
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from cove.errors import CoveError
from cove.protocol.codes import TOOL_DENIED


class ToolDenied(CoveError):
    """A tool call that is refused before it runs; `refuser` names who refused it, as the model is told: Cove's
    policy (outside the workspace, a deny pattern), a hook, or the user."""

    rpc_code = TOOL_DENIED

    def __init__(self, message: str, refuser: str = "Cove's safety policy") -> None:
        super().__init__(message)
        self.refuser = refuser


class ApprovalMode(enum.StrEnum):
    """How much the agent may do without asking."""

    #: Ask before every write and every command.
    ASK = "ask"
    #: Read-only tools and allow-listed commands run; writes and other commands are asked for.
    AUTO_READ = "auto-read"
    #: Everything runs without asking (deny patterns and confinement still apply).
    FULL_AUTO = "full-auto"


#: Commands refused in every mode, with the reason shown to the model and the user.
DENY_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(^|[;&|]\s*|\s)sudo(\s|$)"), "sudo: no privilege escalation"),
    (re.compile(r"(^|\s)su(\s+-|\s+root|\s*$)"), "su: no privilege escalation"),
    (re.compile(r"\brm\s+(-[a-zA-Z]*[rf][a-zA-Z]*\s+)+(/|~|\$HOME|/\*)(\s|$)"), "rm -rf of / or home"),
    (re.compile(r"\b(curl|wget)\b[^|;&]*\|\s*(ba|z|da|k)?sh\b"), "piping a download into a shell"),
    (re.compile(r"\bmkfs(\.\w+)?\b|\bdd\b[^;|&]*\bof=/dev/"), "writing a filesystem or a raw device"),
    (re.compile(r":\(\)\s*\{\s*:\|:&\s*\};:"), "fork bomb"),
    (re.compile(r"\bchmod\s+(-R\s+)?777\s+/(\s|$)"), "opening the whole filesystem"),
    (re.compile(r"\bgit\s+push\b[^;|&]*(--force|-f)\b"), "force-pushing"),
    (re.compile(r">\s*/dev/sd[a-z]"), "writing a raw disk"),
]


def denied_command(command: str) -> str | None:
    """Why `command` is refused in every mode, or None when it is not."""
    try:
        normal = " ".join(shlex.split(command, posix=True))
    except ValueError:
        normal = " ".join(command.split())
    for candidate in (normal, " ".join(command.split())):
        for pattern, reason in DENY_PATTERNS:
            if pattern.search(candidate):
                return reason
    return None


@dataclass(frozen=True)
class Workspace:
    """The folder the agent works in; every path it names must resolve inside it."""

    root: Path

    @staticmethod
    def at(root: Path) -> Workspace:
        return Workspace(root.resolve())

    def resolve(self, path: str) -> Path:
        """The real path of `path` (relative to the root), or ToolDenied when it leads outside the workspace."""
        candidate = (self.root / path).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise ToolDenied(f"{path} is outside the workspace {self.root}; use a path inside it")
        return candidate

    def relative(self, path: Path) -> str:
        """`path` as the agent should name it."""
        return str(path.relative_to(self.root)) if path != self.root else "."


def needs_approval(mode: ApprovalMode, read_only: bool, command: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a tool call must be approved by the user first (deny patterns are checked separately, always)."""
    if read_only or mode is ApprovalMode.FULL_AUTO:
        return False
    if mode is ApprovalMode.AUTO_READ and command is not None:
        try:
            program = shlex.split(command)[:2]
        except ValueError:
            return True
        return not any(" ".join(program).startswith(prefix) for prefix in allowed) or bool(
            re.search(r"[;&|`$<>]", command)
        )
    return True
