"""Load on the daemon's protocol: N concurrent clients doing request/response round trips and event publications.

Starts a real `cove daemon` in a temporary runtime directory, and, as a baseline in the same run, a bare asyncio
server on a Unix socket that answers the same frames without any work (the floor of the transport on this machine).
Prints throughput and p50/p99 latency for each client count, and the daemon's p50 as a ratio of the baseline's.

    .venv/bin/python benchmarks/daemon_load.py [--clients 1 10 50] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cove.protocol.framing import encode_frame, read_frame
from cove.runtime import daemon_paths


async def client_run(socket_path: Path, requests: int, latencies: list[float], handshake: bool) -> None:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))

    async def call(ident: int, method: str, params: dict[str, object]) -> None:
        started = time.perf_counter()
        writer.write(encode_frame({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}))
        await writer.drain()
        while True:
            body = await read_frame(reader)
            assert body is not None, "the server closed the connection"
            if json.loads(body).get("id") == ident:
                break
        latencies.append(time.perf_counter() - started)

    if handshake:
        await call(0, "initialize", {"protocol_version": 1, "client": "load"})
        latencies.pop()
    for ident in range(1, requests + 1):
        if ident % 2:
            await call(ident, "status", {})
        else:
            await call(ident, "events/publish", {"topic": "load", "payload": {"n": ident}})
    writer.close()
    await writer.wait_closed()


async def measure(socket_path: Path, clients: int, requests: int, handshake: bool) -> tuple[float, float, float]:
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(client_run(socket_path, requests, latencies, handshake) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, p50, p99


async def echo_server(socket_path: Path) -> asyncio.Server:
    """The baseline: the same framing, a reply per request, no work."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (body := await read_frame(reader)) is not None:
            ident = json.loads(body).get("id")
            writer.write(encode_frame({"jsonrpc": "2.0", "id": ident, "result": None}))
            await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, path=str(socket_path))


async def main_async(counts: list[int], requests: int, daemon_socket: Path, echo_socket: Path) -> None:
    server = await echo_server(echo_socket)
    print(f"{'clients':>7} {'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs echo':>12}")
    for clients in counts:
        echo = await measure(echo_socket, clients, requests, handshake=False)
        cove = await measure(daemon_socket, clients, requests, handshake=True)
        for name, (rate, p50, p99) in (("echo", echo), ("daemon", cove)):
            ratio = f"{p50 / echo[1]:11.2f}x" if name == "daemon" else f"{'-':>12}"
            print(f"{clients:>7} {name:<8} {rate:>9.0f} {p50 * 1000:>8.3f} {p99 * 1000:>8.3f} {ratio}")
    server.close()
    print("target: daemon p99 under 5 ms at 50 concurrent clients")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--requests", type=int, default=200, help="round trips per client")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runtime = Path(folder) / "run"
        runtime.mkdir(mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), XDG_DATA_HOME=str(Path(folder) / "data"))
        paths = daemon_paths(env)
        daemon = subprocess.Popen([sys.executable, "-m", "cove.cli", "daemon", "--log-level", "warning"], env=env)
        try:
            while not paths.socket.exists():
                if daemon.poll() is not None:
                    raise SystemExit("the daemon did not start")
                time.sleep(0.02)
            asyncio.run(main_async(args.clients, args.requests, paths.socket, Path(folder) / "echo.sock"))
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)


if __name__ == "__main__":
    main()
