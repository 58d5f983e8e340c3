"""What every HTTP model endpoint shares (chat servers and completion servers alike): the client, refused before any
connection when offline mode forbids the host, the key only in the Authorization header; and the one reader of
server-sent events.

Keys come from an environment variable named in config and are sent only as a bearer header: never logged, never
stored, never in an error message.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from cove.errors import ModelError


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_client(base_url: str, api_key_env: str, offline: bool, timeout_s: float) -> httpx.Client:
    """An HTTP client of a model server: refused before any connection when offline mode forbids the host; the key,
    from the named environment variable, only in the Authorization header."""
    if offline and not is_loopback(base_url):
        raise ModelError(
            f"offline mode refuses {urlsplit(base_url).hostname}: only loopback endpoints are allowed; "
            "set offline = false to use a remote server"
        )
    headers = {}
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ModelError(f"the API key variable {api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)


def sse_events(lines: Iterable[str], where: str) -> Iterator[Any]:
    """The JSON payload of each `data:` line of a server-sent event stream, until `[DONE]`; a payload that is not
    JSON is a ModelError naming `where`."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            yield json.loads(payload)
        except json.JSONDecodeError as err:
            raise ModelError(f"{where} streamed a malformed event: {err}") from err
