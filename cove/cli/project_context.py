"""The workspace context `cove complete` gives a completion: what the editor's server would give it.

Read from the project's files (imports, enclosing headers) and, where an editor or `cove index` has indexed the
project and the daemon runs, from its index (the definitions of the names near the cursor, the window's BM25
neighbours), asked over the socket as the server asks. A terminal has no ring of code seen lately. A project never
indexed is not indexed for one completion: the daemon is not started and no build begins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cove.config import CoveConfig, find_project_root
from cove.errors import CoveError
from cove.protocol.params import IndexDefinitions, IndexSearch

if TYPE_CHECKING:
    from cove.daemon_client import DaemonClient
    from cove.inference.completion.engine import WindowContext

#: How long `cove complete` waits for the daemon's index at most, per question.
INDEX_TIMEOUT_S = 2.0


def completion_context(
    path: Path, text: str, offset: int, config: CoveConfig, env: Mapping[str, str] | None = None
) -> WindowContext | None:
    """The context of a completion at `offset` of `path`, by the window's anchor line; None for a file outside any
    project (no folder with `.git` or `.cove` above it)."""
    from cove.server.context.workspace_context import WorkspaceContext

    root = find_project_root(path.parent)
    if root is None:
        return None
    client = _index_client(root, config, os.environ if env is None else env)
    context = WorkspaceContext(
        root,
        index=_DaemonIndex(client, root).definitions if client is not None else None,
        neighbours=_DaemonIndex(client, root).neighbours if client is not None else None,
        sources=frozenset(config.completion.context_sources),
    )
    uri = path.resolve().as_uri()
    return lambda anchor_line: context.gather_prompt(uri, text, anchor_line, config.completion.context_chars, offset)


def _index_client(root: Path, config: CoveConfig, env: Mapping[str, str]) -> DaemonClient | None:
    """A client of the running daemon when the project has an index; None otherwise."""
    from cove.agent.code_index import database_for
    from cove.daemon_client import DaemonClient
    from cove.runtime import daemon_paths

    paths = daemon_paths(env)
    if not config.index.enabled or not database_for(paths.data, root).exists():
        return None
    try:
        return DaemonClient(paths.socket, timeout=INDEX_TIMEOUT_S)
    except CoveError:
        return None


class _DaemonIndex:
    """The project's index in the daemon, asked as the language server asks it (no answer: no context)."""

    def __init__(self, client: DaemonClient, root: Path) -> None:
        self.client, self.root = client, str(root)

    def definitions(self, names: list[str]) -> Sequence[tuple[str, str, int, str]]:
        try:
            chunks = self.client.call(IndexDefinitions(self.root, names, 40))
        except (CoveError, OSError):
            return []
        return [(c["name"], c["path"], c["start_line"], c["text"]) for c in chunks]

    def neighbours(self, key: str, query: str, exclude: str | None) -> Sequence[tuple[str, int, str]]:
        try:
            chunks = self.client.call(IndexSearch(self.root, query, 6, exclude))
        except (CoveError, OSError):
            return []
        return [(c["path"], c["start_line"], c["text"]) for c in chunks]
