"""What the Agent Client Protocol face costs: the same agent turn over `cove acp` (the SDK's Python client, as an
editor drives it) and over Cove's own socket (`agent/run`, as `cove agent` drives it), in turns taken alternately.

One real daemon (temporary runtime, state and config folders), its agent's model the scripted OpenAI-compatible
server on loopback (it answers at once, streaming a reply word by word), so what is measured is the path, not a
model. Printed per path: the time from sending the prompt to the first piece of the answer on screen, and the time
per update after it (the whole stream's time over its pieces), p50 and p95, and the difference ACP adds.

    .venv/bin/python benchmarks/acp_overhead.py [--turns 30] [--words 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import acp
from tqdm import tqdm

from cove.cli.agent_terminal import follow
from cove.daemon_client import DaemonClient
from cove.protocol.events import AgentEvent, Delta
from cove.runtime import daemon_paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scripted server and the ACP client of the tests
from tests.acp.client import RecordingClient, cove_acp
from tests.scripted.openai_server import completion, scripted_openai_server


def answer(words: int) -> str:
    return " ".join(f"word{n}" for n in range(words)) + "."


def socket_turn(client: DaemonClient, session_id: str, task: str) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds per piece after it, pieces) of one turn over the daemon's socket."""
    times: list[float] = []

    def seen(event: AgentEvent) -> None:
        if isinstance(event, Delta):
            times.append(time.perf_counter())

    started = time.perf_counter()
    client.request("agent/run", {"session_id": session_id, "task": task, "mode": "full-auto"})
    follow(client, session_id, lambda decision: (True, ""), seen)
    return times[0] - started, (times[-1] - times[0]) / max(len(times) - 1, 1), len(times)


async def acp_turns(env: dict[str, str], root: Path, turns: int, task: str) -> list[tuple[float, float, int]]:
    client = RecordingClient()
    results: list[tuple[float, float, int]] = []
    async with cove_acp(client, env, root) as conn:
        session = await conn.new_session(cwd=str(root), mcp_servers=[])
        await conn.set_session_mode(session_id=session.session_id, mode_id="full-auto")
        times: list[float] = []
        client.watch = lambda update: (
            times.append(time.perf_counter()) if update.session_update == "agent_message_chunk" else None
        )
        for _ in range(turns):
            times.clear()
            started = time.perf_counter()
            await conn.prompt(session_id=session.session_id, prompt=[acp.text_block(task)])
            await asyncio.sleep(0.05)  # updates sent before the reply may be handled just after it
            results.append((times[0] - started, (times[-1] - times[0]) / max(len(times) - 1, 1), len(times)))
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--words", type=int, default=120)
    args = parser.parse_args()
    task = "Explain what this project does."
    with (
        tempfile.TemporaryDirectory() as folder,
        scripted_openai_server([completion(answer(args.words)) for _ in range(2 * args.turns)]) as server,
    ):
        base = Path(folder)
        root = base / "project"
        root.mkdir()
        (root / "main.py").write_text("print('hello')\n")
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")} | {
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_STATE_HOME": str(base / "state"),
            "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_DATA_HOME": str(base / "data"),
            "COVE_INDEX_ENABLED": "false",
            "COVE_REMOTE_BASE_URL": server.url,
            "COVE_REMOTE_MODEL": "scripted",
            "COVE_AGENT_PLAN_FIRST": "false",
            "COVE_AGENT_CRITIQUE": "false",
        }
        daemon = subprocess.Popen([sys.executable, "-m", "cove.cli", "daemon"], env=env, stderr=subprocess.DEVNULL)
        paths = daemon_paths(env)
        while not paths.socket.exists():
            time.sleep(0.02)
        try:
            own: list[tuple[float, float, int]] = []
            over_acp: list[tuple[float, float, int]] = []
            client = DaemonClient(paths.socket, timeout=120, name="benchmark")
            session_id = client.request("session/create", {"project": str(root), "title": "bench"})["id"]
            for _ in tqdm(range(args.turns), desc="turns", unit="turn"):  # alternately: the same daemon state
                own.append(socket_turn(client, session_id, task))
                over_acp += asyncio.run(acp_turns(env, root, 1, task))
            client.close()
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    print(f"{args.turns} turns per path, each a streamed answer of {args.words} words ({own[0][2]} pieces)")
    print(f"{'path':<24}{'first piece p50':>16}{'p95':>10}{'per piece p50':>16}{'p95':>10}")
    for name, rows in (("daemon socket (own)", own), ("cove acp (ACP SDK)", over_acp)):
        firsts, steps = [r[0] * 1000 for r in rows], [r[1] * 1000 for r in rows]
        print(
            f"{name:<24}{statistics.median(firsts):>13.1f} ms{percentile(firsts, 0.95):>7.1f} ms"
            f"{statistics.median(steps):>13.2f} ms{percentile(steps, 0.95):>7.2f} ms"
        )
    added = statistics.median(r[0] for r in over_acp) - statistics.median(r[0] for r in own)
    per = statistics.median(r[1] for r in over_acp) - statistics.median(r[1] for r in own)
    print(f"ACP adds {added * 1000:.1f} ms to the first piece at p50 and {per * 1000:.2f} ms per piece")


if __name__ == "__main__":
    main()
