"""TypeScript's own module paths: `compilerOptions.baseUrl` and `paths` of the nearest `tsconfig.json` (or
`jsconfig.json`), so that `import {Button} from "@/components/button"` names a file of the workspace as the compiler
resolves it. The files are JSON with comments and trailing commas; `extends` is not followed.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAMES = ("tsconfig.json", "jsconfig.json")
_COMMENT_OR_STRING = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


@dataclass(frozen=True)
class PathMapping:
    """One config's mapping: `paths` patterns (one `*` at most) to targets, relative to `base`."""

    base: Path
    #: Whether bare specifiers are also tried under `base` (a `baseUrl` is set).
    base_url: bool
    paths: tuple[tuple[str, tuple[str, ...]], ...]

    def candidates(self, specifier: str) -> list[Path]:
        """Where `specifier` may be, in the compiler's order: the `paths` patterns that match, then `baseUrl`."""
        found: list[Path] = []
        for pattern, targets in self.paths:
            prefix, star, suffix = pattern.partition("*")
            if not star and specifier == pattern:
                found += [self.base / target for target in targets]
            elif star and specifier.startswith(prefix) and specifier.endswith(suffix):
                middle = specifier[len(prefix) : len(specifier) - len(suffix)]
                found += [self.base / target.replace("*", middle, 1) for target in targets]
        if self.base_url:
            found.append(self.base / specifier)
        return found


def read_jsonc(text: str) -> Any:
    """JSON with `//` and `/* */` comments and trailing commas, as tsconfig files are written."""
    stripped = _COMMENT_OR_STRING.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)
    return json.loads(_TRAILING_COMMA.sub(r"\1", stripped))


def mapping_for(importer: Path, root: Path | None) -> PathMapping | None:
    """The mapping of the config nearest to `importer` (searched up to the workspace's root), None without one."""
    folder = importer.parent
    while True:
        for name in CONFIG_NAMES:
            config = folder / name
            if config.is_file():
                return _mapping(config, config.stat().st_mtime)
        if root is None or folder == root or folder.parent == folder or not folder.is_relative_to(root):
            return None
        folder = folder.parent


@functools.lru_cache(maxsize=32)
def _mapping(config: Path, mtime: float) -> PathMapping | None:
    """A config's mapping (read again when the file changes: `mtime` is part of the key); None when unreadable."""
    try:
        options = read_jsonc(config.read_text(errors="replace")).get("compilerOptions") or {}
    except (OSError, ValueError, AttributeError):
        return None
    base_url = options.get("baseUrl")
    paths = options.get("paths") or {}
    if not isinstance(paths, dict) or (base_url is not None and not isinstance(base_url, str)):
        return None
    base = (config.parent / base_url).resolve() if base_url else config.parent
    patterns = tuple(
        (str(pattern), tuple(str(target) for target in targets))
        for pattern, targets in paths.items()
        if isinstance(targets, list)
    )
    return PathMapping(base, base_url is not None, patterns)
