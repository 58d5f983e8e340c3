"""What a daemon service gives the transport: its methods, each with the type its params are parsed into."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cove.protocol.params import Params


@dataclass(frozen=True)
class Method:
    """A method of the protocol: its params' type (which names it) and the handler that receives them parsed.
    The handler is called as `handler(client, params)`; a `concurrent` one as `handler(client, params, request_id)`,
    without waiting for it before the client's next request is read (its reply may come after later ones')."""

    params: type[Params]
    handler: Callable[..., Awaitable[Any]]
    concurrent: bool = False

    @property
    def name(self) -> str:
        return self.params.method
