"""The agent's file tools, confined to the workspace, with every change recorded for step-by-step undo.

Each tool returns text meant for the model: short, with the facts it needs next (a diff after an edit, line numbers
in a read). Failures raise `ToolError` with a message that says what to do instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cove.agent.safety import Workspace
from cove.errors import CoveError

#: Largest output of one read, in characters; longer reads say how to ask for the rest.
MAX_READ_CHARS = 20_000


class ToolError(CoveError):
    """A tool call that failed in a way the model can fix (a missing file, an ambiguous edit)."""


@dataclass(frozen=True)
class FileChange:
    """One file change: the text before (None: the file did not exist) and after."""

    path: Path
    before: str | None
    after: str


@dataclass
class FileTools:
    """read_file, write_file, edit_file and undo over one workspace.

    `overlay` holds texts that win over the disk (an editor's unsaved buffers). With `propose`, changes go to the
    overlay instead of the disk, and `proposed()` lists them for the editor to apply as a workspace edit.
    """

    workspace: Workspace
    history: list[FileChange] = field(default_factory=list)
    overlay: dict[Path, str] = field(default_factory=dict)
    propose: bool = False
    #: Where a file is read first when it is not in the overlay (an editor's buffers: None from it reads the disk).
    reader: Callable[[Path], str | None] | None = None

    def read_file(self, path: str, start: int = 1, end: int | None = None) -> str:
        """Lines `start`..`end` (1-based, inclusive) of a text file, numbered."""
        target = self._existing(path)
        lines = self._text(target).split("\n")
        if start < 1 or start > max(len(lines), 1):
            raise ToolError(f"{path} has {len(lines)} lines; start must be between 1 and {len(lines)}")
        last = len(lines) if end is None else min(end, len(lines))
        out: list[str] = []
        size = 0
        for number in range(start, last + 1):
            row = f"{number:>6}\t{lines[number - 1]}"
            size += len(row) + 1
            if size > MAX_READ_CHARS:
                out.append(f"[... cut at line {number - 1}; read on with start={number}]")
                break
            out.append(row)
        return "\n".join(out)

    def write_file(self, path: str, content: str) -> str:
        """Create or replace a file; returns a diff of the change."""
        target = self.workspace.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path} is a directory")
        before = self._text(target) if target in self.overlay or target.exists() else None
        return self._apply(target, before, content)

    def edit_file(self, path: str, old_text: str, new_text: str) -> str:
        """Replace the one occurrence of `old_text`; returns a diff. Missing or repeated matches are errors."""
        target = self._existing(path)
        before = self._text(target)
        if not old_text:
            raise ToolError("old_text is empty; give the exact text to replace")
        count = before.count(old_text)
        if count == 0:
            raise ToolError(f"old_text not found in {path}; read the file again and copy the exact text to replace")
        if count > 1:
            raise ToolError(
                f"old_text matches {count} times in {path}; include more surrounding lines so the match is unique"
            )
        return self._apply(target, before, before.replace(old_text, new_text, 1))

    def undo(self) -> str:
        """Revert the agent's last file change; returns what was undone."""
        if not self.history:
            raise ToolError("nothing to undo")
        change = self.history.pop()
        name = self.workspace.relative(change.path)
        if change.before is None:
            if self.propose:
                self.overlay.pop(change.path, None)
            else:
                change.path.unlink(missing_ok=True)
            return f"removed {name}, which the agent had created"
        self._store(change.path, change.before)
        return f"restored {name}\n" + _diff(name, change.after, change.before)

    def proposed(self) -> list[FileChange]:
        """With `propose`: each file's text before the run and after it, for the files the run changed."""
        first: dict[Path, str | None] = {}
        for change in self.history:
            first.setdefault(change.path, change.before)
        return [FileChange(path, before, self.overlay[path]) for path, before in first.items() if path in self.overlay]

    def _text(self, target: Path) -> str:
        if target in self.overlay:
            return self.overlay[target]
        if self.reader is not None and (text := self.reader(target)) is not None:
            return text
        return target.read_text(encoding="utf-8", errors="replace")

    def _store(self, target: Path, text: str) -> None:
        if self.propose:
            self.overlay[target] = text
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            self.overlay.pop(target, None)

    def _existing(self, path: str) -> Path:
        target = self.workspace.resolve(path)
        if target in self.overlay:
            return target
        if not target.is_file():
            raise ToolError(f"no such file: {path}; list_files shows what exists")
        return target

    def _apply(self, target: Path, before: str | None, after: str) -> str:
        self._store(target, after)
        self.history.append(FileChange(target, before, after))
        name = self.workspace.relative(target)
        return _diff(name, before or "", after) or f"{name}: no change"


def _diff(name: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}", n=2
    )
    return "".join(lines)
