"""How long a keystroke's completion waits for the daemon's one model while an agent step is using it.

The daemon's resident model (inference/resident.py) runs agent steps back to back in one thread, as a long agent run
does; meanwhile completions arrive at random moments at places of the standard library (every one asks the model:
no suggestion is reused). Printed: the wait for the model's turn (the agent's prompt chunk or token in progress to
end, its KV state lent), next to the same completions with the model idle, and the completion's whole latency.

    .venv/bin/python benchmarks/keystroke_during_agent.py [--samples 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json.decoder
import random
import statistics
import sys
import textwrap
import threading
import time
from pathlib import Path

from tqdm import tqdm

from cove.config import CoveConfig
from cove.inference.completion.engine import CompletionEngine, CompletionRequest
from cove.inference.model.local_model import LocalModel
from cove.inference.resident import ResidentModel

FILES = [Path(argparse.__file__), Path(json.decoder.__file__), Path(textwrap.__file__)]
MESSAGES = [
    {"role": "system", "content": "You answer questions about Python code.\n" + FILES[0].read_text()[:5000]},
    {"role": "user", "content": "What does argparse.ArgumentParser.parse_args return?"},
]


def places(count: int, seed: int) -> list[CompletionRequest]:
    """Cursors in the middle of random lines of code."""
    rng = random.Random(seed)
    found: list[CompletionRequest] = []
    while len(found) < count:
        path = rng.choice(FILES)
        text = path.read_text()
        lines = text.splitlines(keepends=True)
        index = rng.randrange(len(lines))
        if len(lines[index].strip()) < 12:
            continue
        offset = sum(len(x) for x in lines[:index]) + len(lines[index].rstrip()) // 2
        found.append(CompletionRequest(path.as_uri(), text, offset))
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40, help="completions during agent steps")
    parser.add_argument("--seed", type=int, default=1, help="which places")
    args = parser.parse_args()

    config = CoveConfig()
    resident = ResidentModel(config, chat_tokens=64)
    resident.load()

    def never() -> LocalModel:
        raise AssertionError("the resident model serves")

    settings = dataclasses.replace(config.completion, reuse_suggestions=False)
    engine = CompletionEngine(never, settings, backend=resident)
    requests = places(args.samples, args.seed)
    idle_waits, idle_total = [], []
    for request in tqdm(requests, desc="model idle", file=sys.stderr, leave=False):
        engine.forget(request.document)
        started = time.perf_counter()
        engine.complete(request)
        idle_total.append(time.perf_counter() - started)
        idle_waits.append(resident.last_wait_s)

    stop, steps = threading.Event(), [0]

    def agent() -> None:
        while not stop.is_set():
            resident.chat(MESSAGES)
            steps[0] += 1

    worker = threading.Thread(target=agent)
    worker.start()
    rng = random.Random(args.seed)
    busy_waits, busy_total = [], []
    try:
        for request in tqdm(requests, desc="during agent steps", file=sys.stderr, leave=False):
            time.sleep(rng.uniform(0.2, 1.0))
            engine.forget(request.document)
            started = time.perf_counter()
            engine.complete(request)
            busy_total.append(time.perf_counter() - started)
            busy_waits.append(resident.last_wait_s)
    finally:
        stop.set()
        worker.join()

    print(
        f"{args.samples} completions at random places; agent steps meanwhile: {steps[0]} "
        f"({resident.preemptions} completions answered while a step was paused)"
    )
    print(
        f"{'model':<20} {'wait p50 ms':>12} {'wait p95 ms':>12} {'wait max ms':>12}"
        f" {'total p50 ms':>13} {'total p95 ms':>13}"
    )
    for name, waits, totals in (("idle", idle_waits, idle_total), ("during agent steps", busy_waits, busy_total)):
        print(
            f"{name:<20} {statistics.median(waits) * 1000:>12.1f} {percentile(waits, 0.95) * 1000:>12.1f}"
            f" {max(waits) * 1000:>12.1f} {statistics.median(totals) * 1000:>13.1f}"
            f" {percentile(totals, 0.95) * 1000:>13.1f}"
        )
    print(
        f"targets: wait during an agent step p95 {percentile(busy_waits, 0.95) * 1000:.1f} ms (target <= 50 ms); "
        f"total p50 during/idle {statistics.median(busy_total) / statistics.median(idle_total):.2f}x"
    )


if __name__ == "__main__":
    main()
