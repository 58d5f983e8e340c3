"""From Enter to the first streamed characters of the answer on screen in VS Code's agent view, next to what
`cove acp` itself takes for the same turn (the SDK's Python client, as in benchmarks/acp_overhead.py).

The agent's model is the scripted OpenAI-compatible server (it answers at once, word by word), so what is measured is
the path: the view (a webview in code-server, driven by Chromium through Playwright: tests/editors/workbench.py),
the extension's ACP client, `cove acp`, the daemon. Timed in the view's own page: from the Enter keydown in the prompt
box to the first `.agent` element with text. Printed: p50/p95 of both, and what the view adds.

    .venv/bin/python benchmarks/workbench_agent_first_chunk.py [--turns 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import acp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.acp.client import RecordingClient, cove_acp
from tests.editors.test_vscode_chat import idle, open_agent_view
from tests.editors.workbench import missing, open_workbench
from tests.scripted.openai_server import completion, scripted_openai_server

ANSWER = "The project prints hello; " + " ".join(f"word{n}" for n in range(40)) + "."
#: In the view's page: when Enter went down in the prompt box, and when an answer's first text appeared after it.
TIMING = """() => {
  window.__sent = 0; window.__shown = 0; window.__before = 0;
  document.querySelector('#prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      window.__sent = performance.now(); window.__shown = 0;
      window.__before = document.querySelectorAll('.agent').length;
    }
  }, true);
  new MutationObserver(() => {
    const answers = document.querySelectorAll('.agent');
    if (window.__sent && !window.__shown && answers.length > window.__before
        && answers[answers.length - 1].textContent) {
      window.__shown = performance.now();
    }
  }).observe(document.querySelector('#log'), { childList: true, subtree: true, characterData: true });
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def through_acp(env: dict[str, str], root: Path, turns: int) -> list[float]:
    client = RecordingClient()
    times: list[float] = []
    firsts: list[float] = []
    client.watch = lambda update: (
        times.append(time.perf_counter()) if update.session_update == "agent_message_chunk" else None
    )
    async with cove_acp(client, env, root) as conn:
        session = await conn.new_session(cwd=str(root), mcp_servers=[])
        for _ in range(turns):
            times.clear()
            started = time.perf_counter()
            await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("What does this project do?")])
            await asyncio.sleep(0.05)
            firsts.append((times[0] - started) * 1000)
    return firsts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=15)
    args = parser.parse_args()
    if missing():
        sys.exit("code-server and chromium are needed: scripts/test installs code-server into build/code-server")
    with (
        tempfile.TemporaryDirectory() as folder,
        scripted_openai_server([completion(ANSWER) for _ in range(2 * args.turns + 2)]) as server,
    ):
        tmp = Path(folder)
        runtime = tmp / "run"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
        env.update({f"XDG_{name}_HOME": str(tmp / name.lower()) for name in ("CONFIG", "STATE", "DATA")})
        env |= {
            "XDG_RUNTIME_DIR": str(runtime),
            "COVE_INDEX_ENABLED": "false",
            "COVE_ROUTING_COMPLETE": '["local"]',
            "COVE_REMOTE_BASE_URL": server.url,
            "COVE_REMOTE_MODEL": "scripted",
            "COVE_AGENT_PLAN_FIRST": "false",
            "COVE_AGENT_CRITIQUE": "false",
        }
        view: list[float] = []
        with open_workbench(tmp, env, {"main.py": "print('hello')\n"}) as bench:
            bench.page.wait_for_selector(".statusbar-item:has-text('Cove:')", timeout=120_000)
            frame = open_agent_view(bench)
            frame.evaluate(TIMING)
            for _ in range(args.turns):
                frame.click("#prompt")
                frame.fill("#prompt", "What does this project do?")
                frame.press("#prompt", "Enter")
                frame.wait_for_function("() => window.__shown > 0", timeout=60_000)
                view.append(float(frame.evaluate("() => window.__shown - window.__sent")))
                idle(frame)
            with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
                direct = pool.submit(asyncio.run, through_acp(env, bench.workspace, args.turns)).result()
        subprocess_stop(env)
    print(f"{args.turns} turns each: Enter to the answer's first characters on screen (scripted model)")
    print(f"{'path':<34}{'p50 ms':>9}{'p95 ms':>9}")
    for name, values in (("cove acp (SDK client)", direct), ("VS Code agent view (workbench)", view)):
        print(f"{name:<34}{statistics.median(values):>9.1f}{percentile(values, 0.95):>9.1f}")
    added = statistics.median(view) - statistics.median(direct)
    print(f"the view adds {added:.1f} ms at p50 (target <= 100 ms)")


def subprocess_stop(env: dict[str, str]) -> None:
    """Stop the daemon the view and the client shared (its runtime folder is this run's)."""
    import subprocess

    subprocess.run([sys.executable, "-m", "cove.cli", "daemon", "stop"], env=env, capture_output=True, check=False)


if __name__ == "__main__":
    main()
