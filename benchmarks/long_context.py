"""Long context in the daemon: memory and latency of a real `cove daemon` at 32K tokens with each KV-cache setting.

For each setting of inference/model/kv_memory.py a daemon is started in temporary runtime, data, state and config
folders (nothing touches the user's daemon) with `[model] n_ctx = 32768` and that setting, and a scripted local session
is driven through its socket: long completions (`complete/generate`) of one document whose prompt grows step by step,
a slice of the standard library's own modules at a time, to ~32K tokens. Each step is asked twice on the same prompt:
once for one token (the prefill of what is new, reusing the document's KV cache of the step before: the first
token's latency) and once for `--new-tokens` tokens (generation at that context). Meanwhile a thread reads the
daemon's /proc/PID/status many times per second.

Printed per setting: RSS before the model loads, after it loads, the peak (VmHWM, the kernel's own high-water mark;
the sampled maximum beside it), and per step the context tokens, the tokens reused, the first token's latency, the
generation's and the RSS; then a table against the full-size f16 cache measured in the same run.

    .venv/bin/python benchmarks/long_context.py [--settings f16-full q8_0-swa] [--max-tokens-context 32000]
                                                [--steps 8] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
from tqdm import tqdm

import cove.inference.model.local_model  # noqa: F401 (routes llama.cpp's log to `logging`, away from the output)
from cove.config import ModelConfig
from cove.daemon_client import DaemonClient
from cove.errors import DaemonUnavailable
from cove.inference.model.kv_memory import SETTINGS, KvShape, KvType, kv_bytes, shape_from_metadata
from cove.inference.model.model_files import locate_model
from cove.protocol.jobs import CompletionMode, GenerationJob, PromptWindow, StopRule
from cove.protocol.params import CompleteGenerate, CompleteLoad
from cove.runtime import daemon_paths

N_CTX = 32768
#: Modules of the standard library read in turn (their own files: nothing written in this repository).
MODULES = [
    "argparse",
    "inspect",
    "subprocess",
    "typing",
    "dataclasses",
    "json.decoder",
    "textwrap",
    "difflib",
    "configparser",
    "shlex",
    "fractions",
    "csv",
    "string",
    "tarfile",
    "zipfile",
    "pathlib",
]
DOCUMENT = "file:///long-context/session.py"
XDG = ("XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")
MIB = 1 << 20


def setting_key(kv_type: KvType, swa_full: bool) -> str:
    """The short name `--settings` takes: f16-full, f16-swa, q8_0-swa, q4_0-swa."""
    return f"{kv_type}-{'full' if swa_full else 'swa'}"


KEYS = {setting_key(kv_type, swa_full): (label, kv_type, swa_full) for label, kv_type, swa_full in SETTINGS}


def session_text(tokenize: Callable[[str], list[int]], max_tokens: int, steps: int) -> tuple[str, list[int]]:
    """The session's document (standard library modules one after another, each under its name) cut at a line
    boundary near `max_tokens` tokens, and the character offsets (line starts) where each step's prompt ends,
    spaced evenly by tokens."""
    parts = []
    for name in MODULES:
        module = importlib.import_module(name)
        parts.append(f"# ---- {name} ({Path(module.__file__ or '').name})\n{Path(module.__file__ or '').read_text()}\n")
    text = "".join(parts)
    lines = text.splitlines(keepends=True)
    # Tokens per line, counted line by line: within a few tokens of the whole text's count, enough to place cuts.
    ends, total, offset = [], 0, 0
    targets = [max_tokens * (step + 1) // steps for step in range(steps)]
    for line in lines:
        total += len(tokenize(line))
        offset += len(line)
        while targets and total >= targets[0]:
            ends.append(offset)
            targets.pop(0)
        if not targets:
            break
    if targets:
        raise SystemExit(f"the modules hold only {total} tokens; ask for fewer with --max-tokens-context")
    return text[: ends[-1]], ends


class RssSampler(threading.Thread):
    """Reads VmRSS and VmHWM of a process every `interval` seconds until stopped; `peak_kib` is the sampled maximum."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.hwm_kib = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def read(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in KiB now; (0, 0) once the process is gone."""
        values = {"VmRSS:": 0, "VmHWM:": 0}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                words = line.split()
                if words and words[0] in values:
                    values[words[0]] = int(words[1])
        except (OSError, ValueError):
            pass
        return values["VmRSS:"], values["VmHWM:"]

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss, hwm = self.read()
            self.peak_kib = max(self.peak_kib, rss)
            self.hwm_kib = max(self.hwm_kib, hwm)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass(frozen=True)
class Step:
    """One step of the session: the prompt's tokens, those reused from the step before, the first token's latency
    (prefill of the rest), the generation's (at that context), and the daemon's RSS after it."""

    context_tokens: int
    reused_tokens: int
    first_token_s: float
    generated_tokens: int
    generation_s: float
    rss_kib: int


@dataclass
class SettingRun:
    key: str
    label: str
    kv_mib: float
    rss_idle_kib: int = 0
    rss_loaded_kib: int = 0
    load_s: float = 0.0
    peak_kib: int = 0
    hwm_kib: int = 0
    samples: int = 0
    steps: list[Step] = field(default_factory=list)
    error: str = ""

    @property
    def session_s(self) -> float:
        return sum(step.first_token_s + step.generation_s for step in self.steps)


def job(prefix: str, new_tokens: int) -> GenerationJob:
    """A long completion at the end of `prefix`: text mode without stop strings, so it runs to `new_tokens`."""
    line_prefix = prefix[prefix.rfind("\n") + 1 :]
    window = PromptWindow(prefix, "", 0, line_prefix, "")
    rule = StopRule(CompletionMode.TEXT, line_prefix, "", 0)
    return GenerationJob(DOCUMENT, window, CompletionMode.TEXT, rule, new_tokens, budget_s=600.0)


def start_daemon(folder: Path, kv_type: KvType, swa_full: bool) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """A `cove daemon run` of its own, configured by a user config file in `folder`; its output goes to a log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
    for name in XDG:
        path = folder / name.lower()
        path.mkdir(mode=0o700)
        env[name] = str(path)
    config = Path(env["XDG_CONFIG_HOME"]) / "cove" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        f'[model]\nn_ctx = {N_CTX}\nkv_type = "{kv_type}"\nswa_full = {str(swa_full).lower()}\nidle_unload_s = 0\n'
    )
    log = (folder / "daemon.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cove.cli", "daemon", "run", "--idle-timeout", "3600"],
        env=env,
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, env


def connect(socket: Path, process: subprocess.Popen[bytes], timeout: float = 60.0) -> DaemonClient:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the daemon exited with {process.returncode}")
        try:
            return DaemonClient(socket, timeout=3600.0, name="cove-benchmark")
        except DaemonUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class DaemonUnderTest:
    """A daemon with one setting, its client and its RSS sampler, alive through the whole session."""

    def __init__(self, key: str, shape: KvShape, folder: Path) -> None:
        label, kv_type, swa_full = KEYS[key]
        self.run = SettingRun(key, label, kv_bytes(shape, N_CTX, kv_type, swa_full, ModelConfig().n_batch) / MIB)
        self.folder = folder
        self.process, env = start_daemon(folder, kv_type, swa_full)
        self.sampler = RssSampler(self.process.pid)
        self.client: DaemonClient | None = None
        self._socket = daemon_paths(env).socket

    def load(self) -> None:
        """Connect, start sampling, and have the model loaded (the RSS before and after)."""
        self.client = connect(self._socket, self.process)
        self.sampler.start()
        self.run.rss_idle_kib = self.sampler.read()[0]
        started = time.perf_counter()
        self.client.call(CompleteLoad())
        self.run.load_s = time.perf_counter() - started
        time.sleep(0.5)  # let the allocator settle before the after-load reading
        self.run.rss_loaded_kib = self.sampler.read()[0]

    def step(self, prefix: str, new_tokens: int) -> None:
        """One step: the prompt's first token (prefill of what is new), then `new_tokens` generated at it."""
        assert self.client is not None
        started = time.perf_counter()
        first = self.client.call(CompleteGenerate(job(prefix, 1)))
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        rest = self.client.call(CompleteGenerate(job(prefix, new_tokens)))
        generation_s = time.perf_counter() - started
        self.run.steps.append(
            Step(
                first["prompt_tokens"],
                first["reused_tokens"],
                first_s,
                rest["generated_tokens"],
                generation_s,
                self.sampler.read()[0],
            )
        )

    def fail(self, err: Exception) -> None:
        """Keep what went wrong, with the end of the daemon's log; the session goes on without this setting."""
        log = (self.folder / "daemon.log").read_text(errors="replace").strip().splitlines()[-5:]
        self.run.error = f"{type(err).__name__}: {err}; daemon log: {' | '.join(log)}"
        self.close()

    def close(self) -> None:
        if self.sampler.is_alive():
            self.sampler.stop()
        run = self.run
        run.peak_kib, run.hwm_kib, run.samples = self.sampler.peak_kib, self.sampler.hwm_kib, self.sampler.samples
        if self.client is not None:
            self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_session(keys: list[str], shape: KvShape, text: str, ends: list[int], new_tokens: int) -> list[SettingRun]:
    """Every setting's daemon through the same steps, interleaved (one computes at a time; the order alternates from
    step to step) so that a load on the machine that comes and goes falls on all of them alike."""
    with tempfile.TemporaryDirectory(prefix="cove-long-context-") as name:
        daemons = []
        for key in keys:
            folder = Path(name) / key
            folder.mkdir()
            daemons.append(DaemonUnderTest(key, shape, folder))
        try:
            for daemon in daemons:
                try:
                    daemon.load()
                except Exception as err:  # a setting that cannot load is a result
                    daemon.fail(err)
            with tqdm(total=len(keys) * len(ends), desc="steps", file=sys.stderr) as bar:
                for number, end in enumerate(ends):
                    for daemon in daemons if number % 2 == 0 else daemons[::-1]:
                        bar.set_postfix_str(f"{daemon.run.key} at {end} chars")
                        if not daemon.run.error:
                            try:
                                daemon.step(text[:end], new_tokens)
                            except Exception as err:  # a step that fails at long context is a result
                                daemon.fail(err)
                        bar.update()
        finally:
            for daemon in daemons:
                if not daemon.run.error:
                    daemon.close()
    return [daemon.run for daemon in daemons]


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def report(runs: list[SettingRun], new_tokens: int) -> None:
    for run in runs:
        print(
            f"\n{run.label} ({run.key}): KV {run.kv_mib:.1f} MiB at {N_CTX}; RSS {mib(run.rss_idle_kib)} MiB before "
            f"the model, {mib(run.rss_loaded_kib)} MiB loaded ({run.load_s:.1f} s), peak {mib(run.hwm_kib)} MiB "
            f"(sampled max {mib(run.peak_kib)}, {run.samples} samples)"
        )
        if run.error:
            print(f"  FAILED after {len(run.steps)} steps: {run.error}")
        print(
            f"  {'step':>4} {'context':>8} {'reused':>7} {'first token s':>14} {'gen s':>7} {'ms/token':>9}"
            f" {'RSS MiB':>8}"
        )
        for number, step in enumerate(run.steps, 1):
            per_token = step.generation_s / max(step.generated_tokens, 1) * 1000
            print(
                f"  {number:>4} {step.context_tokens:>8} {step.reused_tokens:>7} {step.first_token_s:>14.2f}"
                f" {step.generation_s:>7.2f} {per_token:>9.1f} {mib(step.rss_kib):>8}"
            )
    base = next((run for run in runs if run.key == "f16-full" and not run.error), None)
    print(
        f"\nagainst {base.key if base else '(no f16-full run)'} in the same run ({new_tokens} tokens generated a step):"
    )
    print(
        f"{'setting':<9} {'KV MiB':>7} {'loaded':>7} {'peak':>6} {'peak x':>7} {'over load':>9} {'x':>6}"
        f" {'last 1st tok s':>14} {'x':>6} {'last ms/tok':>11} {'x':>6} {'session s':>9} {'x':>6}"
    )
    for run in runs:
        last = run.steps[-1] if run.steps else None
        over = run.hwm_kib - run.rss_loaded_kib
        per_token = last.generation_s / max(last.generated_tokens, 1) * 1000 if last else 0.0

        def ratio(value: float, of: Callable[[SettingRun], float]) -> str:
            reference = of(base) if base else 0.0
            return f"{value / reference:.2f}x" if reference else "-"

        def last_first(r: SettingRun) -> float:
            return r.steps[-1].first_token_s if r.steps else 0.0

        def last_per_token(r: SettingRun) -> float:
            return r.steps[-1].generation_s / max(r.steps[-1].generated_tokens, 1) * 1000 if r.steps else 0.0

        print(
            f"{run.key:<9} {run.kv_mib:>7.1f} {mib(run.rss_loaded_kib):>7} {mib(run.hwm_kib):>6}"
            f" {ratio(run.hwm_kib, lambda r: r.hwm_kib):>7} {mib(over):>9}"
            f" {ratio(over, lambda r: r.hwm_kib - r.rss_loaded_kib):>6}"
            f" {(last.first_token_s if last else 0):>14.2f} {ratio(last_first(run), last_first):>6}"
            f" {per_token:>11.1f} {ratio(last_per_token(run), last_per_token):>6}"
            f" {run.session_s:>9.1f} {ratio(run.session_s, lambda r: r.session_s):>6}"
            + ("  FAILED" if run.error else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--settings", nargs="+", choices=list(KEYS), default=["f16-full", "q8_0-swa"], help="KV settings to run"
    )
    parser.add_argument("--max-tokens-context", type=int, default=32000, help="tokens of the last step's prompt")
    parser.add_argument("--steps", type=int, default=8, help="steps to reach it")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated at each step")
    args = parser.parse_args()
    if args.max_tokens_context + args.new_tokens + 2 >= N_CTX:
        parser.error(f"--max-tokens-context plus --new-tokens must stay below n_ctx {N_CTX}")

    vocab = llama_cpp.Llama(str(locate_model(ModelConfig())), vocab_only=True, verbose=False)
    shape = shape_from_metadata(vocab.metadata)

    def tokenize(text: str) -> list[int]:
        return list(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    text, ends = session_text(tokenize, args.max_tokens_context, args.steps)
    print(
        f"{len(text)} characters of {len(MODULES)} standard library modules at most, in {args.steps} steps to "
        f"~{args.max_tokens_context} tokens; n_ctx {N_CTX}, {args.new_tokens} tokens generated a step"
    )
    report(run_session(args.settings, shape, text, ends, args.new_tokens), args.new_tokens)


if __name__ == "__main__":
    main()
