"""Suggestion counts kept on this machine for the acceptance rate: shown, accepted, dismissed, per day.

A suggestion is shown when an inline completion returns one; accepted when the client runs the `cove.accepted`
command attached to it (VS Code does on Tab; the Neovim plugin does on accept); dismissed when the next suggestion
for the same document replaces it without it being accepted or typed through. Counts are written to
`$XDG_STATE_HOME/cove/stats.json` at most every `flush_s` seconds and at exit; nothing leaves the machine.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

COUNTS = ("shown", "accepted", "dismissed")


class SuggestionStats:
    def __init__(self, path: Path, flush_s: float = 30.0) -> None:
        self.path = path
        self.flush_s = flush_s
        self.days: dict[str, dict[str, int]] = load(path)
        self._open: dict[str, str] = {}  # document -> its suggestion still on screen
        self._flushed = time.monotonic()

    def shown(self, document: str, text: str, typed_through: bool) -> None:
        """A new suggestion for `document`; the one it replaces is dismissed unless typed through."""
        previous = self._open.pop(document, None)
        if previous is not None and not typed_through:
            self._count("dismissed")
        if text:
            self._open[document] = text
            if not typed_through:
                self._count("shown")

    def accepted(self, document: str) -> None:
        if self._open.pop(document, None) is not None:
            self._count("accepted")

    def _count(self, kind: str) -> None:
        today = datetime.date.today().isoformat()
        day = self.days.setdefault(today, dict.fromkeys(COUNTS, 0))
        day[kind] = day.get(kind, 0) + 1
        if time.monotonic() - self._flushed > self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write the counts (atomically: a crash leaves the old file or the new one)."""
        self._flushed = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.days, indent=1, sort_keys=True), encoding="utf-8")
        partial.replace(self.path)


def load(path: Path) -> dict[str, dict[str, int]]:
    """The counts on disk; a missing or damaged file counts as none (a damaged one is kept aside)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        path.replace(path.with_suffix(".damaged"))
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        day: {kind: int(counts.get(kind, 0)) for kind in COUNTS}
        for day, counts in data.items()
        if isinstance(counts, dict)
    }


def report(days: dict[str, dict[str, int]], last: int = 7) -> str:
    """A table of the last days and the totals, with the acceptance rate (accepted / shown)."""
    rows = [f"{'day':<12}{'shown':>8}{'accepted':>10}{'dismissed':>11}{'rate':>8}"]
    totals = dict.fromkeys(COUNTS, 0)
    for day in sorted(days):
        for kind in COUNTS:
            totals[kind] += days[day][kind]
    for day in sorted(days)[-last:]:
        rows.append(_row(day, days[day]))
    rows.append(_row("all", totals))
    return "\n".join(rows)


def _row(label: str, counts: dict[str, int]) -> str:
    rate = f"{100 * counts['accepted'] / counts['shown']:.1f}%" if counts["shown"] else "-"
    return f"{label:<12}{counts['shown']:>8}{counts['accepted']:>10}{counts['dismissed']:>11}{rate:>8}"
