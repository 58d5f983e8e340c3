"""A small real MCP server (stdio, the official SDK) for the tests: an issue tracker with two tickets."""

from __future__ import annotations

import socket
import time

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

app = MCPServer("tickets")
TICKETS = {7: "the parser drops trailing commas", 9: "the tests are slow on CI"}


@app.tool(
    description="Look up a ticket of the issue tracker by its number.",
    annotations=ToolAnnotations(read_only_hint=True),
)
def lookup_ticket(number: int) -> str:
    if number not in TICKETS:
        raise ToolError(f"no ticket {number}")
    return f"ticket {number}: {TICKETS[number]}"


@app.tool(description="Close a ticket of the issue tracker.")
def close_ticket(number: int) -> str:
    return f"closed ticket {number}"


@app.tool(description="The name of the machine the tracker runs on.", annotations=ToolAnnotations(read_only_hint=True))
def machine() -> str:
    return socket.gethostname()


@app.tool(
    description="Export the tracker's tickets (takes `seconds`).", annotations=ToolAnnotations(read_only_hint=True)
)
def export_tickets(seconds: float) -> str:
    time.sleep(seconds)
    return f"exported {len(TICKETS)} tickets"


if __name__ == "__main__":
    app.run()
