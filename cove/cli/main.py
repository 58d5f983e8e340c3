"""The `cove` command: serve LSP, complete a file position, get the model ready, check the installation."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cove import __version__
from cove.cli import checkpoint_commands, commit_command, index_command
from cove.config import (
    CoveConfig,
    LoadedConfig,
    MultilineMode,
    find_project_root,
    load_config,
    user_config_path,
)
from cove.errors import CoveError, InputError
from cove.protocol.params import MemorySearch, MemoryWrite, ShutdownParams, StatusParams

if TYPE_CHECKING:
    from cove.config import ModelConfig
    from cove.inference.model.kv_measure import KvMeasurement


@dataclass(frozen=True)
class FilePosition:
    """A place in a file given as FILE:LINE[:COL], one-based as editors and compilers print it."""

    path: Path
    line: int
    column: int | None


def parse_position(spec: str) -> FilePosition:
    """Parse FILE:LINE[:COL]; the file part may itself contain colons."""
    parts = spec.rsplit(":", 2)
    numbers: list[int] = []
    while len(parts) > 1 and parts[-1].isdigit() and len(numbers) < 2:
        numbers.insert(0, int(parts.pop()))
    if not numbers:
        raise InputError(f"expected FILE:LINE[:COL], got {spec!r}")
    path = Path(":".join(parts))
    line, column = numbers[0], (numbers[1] if len(numbers) > 1 else None)
    if line < 1 or (column is not None and column < 1):
        raise InputError(f"lines and columns count from 1, got {spec!r}")
    return FilePosition(path, line, column)


def read_position(position: FilePosition) -> tuple[str, int]:
    """The file's text and the cursor's character offset; COL defaults to the end of the line."""
    try:
        text = position.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{position.path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{position.path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InputError(f"{position.path}: not a UTF-8 text file") from None
    except OSError as err:
        raise InputError(f"{position.path}: cannot read ({err.strerror})") from None
    lines = text.split("\n")
    if position.line > len(lines):
        raise InputError(f"{position.path}: line {position.line} is out of range (the file has {len(lines)} lines)")
    line_text = lines[position.line - 1]
    column = len(line_text) + 1 if position.column is None else position.column
    if column > len(line_text) + 1:
        raise InputError(
            f"{position.path}:{position.line}: column {column} is out of range "
            f"(the line has {len(line_text)} characters)"
        )
    offset = sum(len(line) + 1 for line in lines[: position.line - 1]) + column - 1
    return text, offset


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _progress_bar(description: str) -> Callable[[int, int], None]:
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, unit="B", unit_scale=True, desc=description, file=sys.stderr))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return update


def _config_for(start: Path) -> LoadedConfig:
    return load_config(find_project_root(start))


def cmd_acp(args: argparse.Namespace) -> int:
    """Serve the Agent Client Protocol over stdin/stdout: the editor starts this in the project's folder."""
    from cove.acp.face import main as serve_acp

    return serve_acp()


def cmd_lsp(args: argparse.Namespace) -> int:
    """Serve the Language Server Protocol over stdin/stdout."""
    import logging

    from cove.server.app import run_stdio

    # stdout carries the protocol; logs go to stderr, which editors keep in their LSP log.
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        **({"filename": args.log_file} if args.log_file else {"stream": sys.stderr}),
    )
    run_stdio()
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Print the model's path, assembling the default model first when it is missing."""
    from cove.inference.model.model_files import locate_model, verify_default_model

    loaded = _config_for(Path.cwd())
    path = locate_model(loaded.config.model, progress=_progress_bar("assembling model"))
    if args.verify and not loaded.config.model.path:
        if not verify_default_model(path, _progress_bar("checking sha256")):
            raise CoveError(f"{path} does not match its published sha256; delete it and run `cove model` again")
        print("sha256 ok", file=sys.stderr)
    print(path)
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    """Complete the text at FILE:LINE[:COL] as `[routing] complete` says (the local model by default); print it."""
    from cove.cli.project_context import completion_context
    from cove.inference.completion.engine import CompletionEngine, CompletionRequest
    from cove.inference.model.local_model import open_local_model

    position = parse_position(args.position)
    text, offset = read_position(position)
    loaded = _config_for(position.path.parent)
    config = loaded.config
    if args.multiline:
        config = _with_multiline(loaded, args.multiline)
    progress = _progress_bar("assembling model")
    # Loaded here only when it serves (by default the daemon's model does, loaded once for every client).
    engine = CompletionEngine(lambda: open_local_model(config.model, progress), config.completion)
    engine.reroute(config)
    request = CompletionRequest(
        str(position.path), text, offset, context=completion_context(position.path, text, offset, config)
    )
    if args.show_prompt:
        print(engine.prompt(request).describe(), file=sys.stderr)
    line_prefix = text[text.rfind("\n", 0, offset) + 1 : offset]
    tty = sys.stdout.isatty()
    shown = [0]

    def stream(so_far: str) -> None:
        if tty:
            sys.stdout.write(so_far[shown[0] :])
            sys.stdout.flush()
            shown[0] = len(so_far)

    if tty:
        sys.stdout.write(f"\033[2m{line_prefix}\033[0m")
    completion = engine.complete(request, on_text=stream)
    if tty:
        # The streamed text may have been trimmed at the end (stop rules, repeated suffix): redraw the final line.
        sys.stdout.write("\r\033[K" + f"\033[2m{line_prefix}\033[0m" + completion.text + "\n")
    else:
        sys.stdout.write(completion.text + "\n")
    print(
        f"[{completion.mode.value}, {completion.seconds:.2f} s, {completion.prompt_tokens} prompt tokens, "
        f"{completion.generated_tokens} generated, stopped by {completion.stop}; {engine.describe()}]",
        file=sys.stderr,
    )
    engine.close()
    return 0


def _with_multiline(loaded: LoadedConfig, mode: MultilineMode) -> CoveConfig:
    completion = dataclasses.replace(loaded.config.completion, multiline=mode)
    return dataclasses.replace(loaded.config, completion=completion)


def _hosted_here(status: dict[str, Any]) -> str:
    """Which model this folder's project asks the daemon for, the setting that chose it, and whether it is loaded."""
    from cove.inference.completion.daemon_completions import DaemonCompletions
    from cove.protocol.params import ModelSpec
    from cove.runtime import daemon_paths

    try:
        loaded = _config_for(Path.cwd())
    except CoveError as err:
        return f"this project: {err}"
    hosted = DaemonCompletions(daemon_paths(), ModelSpec.of(loaded.config)).hosted(status)
    return f"{hosted}; model.path set by {loaded.origin('model.path')}"


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the installation: versions, config files, the model, what runs offline."""
    from cove.inference.model.kv_measure import load_measured
    from cove.inference.model.model_files import locate_model, verify_default_model

    failures = 0

    def report(ok: bool, label: str, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'ok ' if ok else 'FAIL'} {label:<10} {detail}")

    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("llama-cpp-python", "pygls", "lsprotocol", "tree-sitter", "httpx")
    )
    report(True, "cove", f"{__version__} on Python {platform.python_version()} ({versions})")
    user_file = user_config_path()
    try:
        loaded = _config_for(Path.cwd())
        read = ", ".join(loaded.sources) or "none (built-in defaults)"
        report(
            True,
            "config",
            f"read: {read}; user file: {user_file}; project: {loaded.project_root or 'none found'}",
        )
    except CoveError as err:
        report(False, "config", str(err))
        return 1
    try:
        path = locate_model(loaded.config.model, assemble_missing=False)
        size = path.stat().st_size / 1e6
        if not loaded.config.model.path and not verify_default_model(path):
            report(False, "model", f"{path} does not match its sha256; delete it and run `cove model`")
        else:
            started = time.perf_counter()
            model, measured = load_measured(path, loaded.config.model)
            seconds = time.perf_counter() - started
            fim = "fill-in-the-middle" if model.fim else "prefix continuation (no fill-in-the-middle tokens)"
            chosen = f"model.path set by {loaded.origin('model.path')}"
            report(
                True,
                "model",
                f"{path} ({size:.0f} MB, {chosen}): {model.description}, loads in {seconds:.1f} s, {fim}",
            )
            model.close()
            _report_kv_memory(measured, memory_table=args.memory)
            if args.memory:
                _report_kv_settings(path, loaded.config.model)
            _report_fitness(loaded.config, path)
    except CoveError as err:
        report(False, "model", str(err))
    _report_completion_route(loaded.config, report)
    from cove.agent.sandbox import sandbox_status
    from cove.cli.outbound import offline_line
    from cove.runtime import daemon_paths

    print(offline_line(loaded.config))
    print(sandbox_status(loaded.config.sandbox))
    print(f"index      {index_command.doctor_line(loaded.project_root, daemon_paths().data)}")
    _report_acp(loaded.config)
    return 1 if failures else 0


def _report_acp(config: CoveConfig) -> None:
    """The Agent Client Protocol face: what an editor runs, and whether its runs can start with these settings."""
    import shutil

    from acp import PROTOCOL_VERSION

    from cove.inference.model.fitness import check_agent

    fitness = check_agent(config)
    running = Path(sys.argv[0])
    command = (
        str(running.resolve()) if running.name == "cove" else shutil.which("cove") or f"{sys.executable} -m cove.cli"
    )
    detail = (
        f"`{command} acp` serves the Agent Client Protocol v{PROTOCOL_VERSION} "
        f"(agent-client-protocol {_version('agent-client-protocol')}) to Zed, JetBrains, Neovim, Emacs (docs/acp.md)"
    )
    print(
        f"{'ok ' if fitness.fit else 'off '} acp        {detail}"
        + ("" if fitness.fit else f"\n{'':15}its prompts are refused until {fitness.hint}")
    )


def _report_fitness(config: CoveConfig, path: Path) -> None:
    """What the model can do, per workload: `ok`, `warn` (works, weakly) or `off` (with what would make it work);
    neither is a failure of the installation."""
    from cove.inference.model.fitness import agent_fitness, completion_fitness, model_facts

    facts = model_facts(path)
    for fitness in (completion_fitness(facts), agent_fitness(config, facts)):
        state = "off " if not fitness.fit else "warn" if fitness.warning else "ok "
        detail = fitness.reason + (f"; {fitness.warning}" if fitness.warning else "")
        print(
            f"{state} {fitness.workload:<10} {detail}"
            + (f"\n{'':15}to enable it: {fitness.hint}" if fitness.hint else "")
        )


def _report_completion_route(config: CoveConfig, report: Callable[[bool, str, str], None]) -> None:
    """Who serves completions: the local model alone, or servers first (each probed: reachable, what, how fast)."""
    from cove.inference.completion.completion_routing import server_targets
    from cove.inference.routing import Slot, chain

    targets = chain(config.routing, Slot.COMPLETE)
    if targets[0] == "local":
        return
    servers, unavailable = server_targets(config)
    for name, reason in unavailable:
        report(False, "completion", f"{name} is in [routing] complete but cannot be used: {reason}")
    for server in servers:
        try:
            probed = server.probe()  # first: it may learn what the server offers (llama-server: /infill or not)
            report(True, "completion", f"{server.describe()}: {probed}; the local model answers if it fails")
        except CoveError as err:
            report(False, "completion", f"{err}; the local model answers meanwhile")
        finally:
            server.close()


def _report_kv_memory(measured: KvMeasurement, memory_table: bool) -> None:
    """The configured KV cache as this process loaded it: llama.cpp's buffers beside the computed size, and what the
    load added to the resident memory."""
    setting = f"kv_type {measured.kv_type}, swa_full {str(measured.swa_full).lower()}"
    buffers, loaded = measured.buffers, measured.loaded
    cells = " + ".join(str(n) for n in buffers.kv_cells)
    print(
        f"ok  {'kv cache':<10} {buffers.kv_total_mib:.1f} MiB in llama.cpp's KV buffers ({cells} cells), "
        f"{measured.computed_mib:.1f} MiB computed, at n_ctx {measured.n_ctx} with {setting}"
    )
    file_growth = loaded.file_mib - measured.before.file_mib
    print(
        f"{'':15}the load added {measured.load_growth_mib:.0f} MiB resident ({loaded.total_mib:.0f} MiB now): "
        f"{file_growth:.0f} MiB of the mapped model file, {measured.anon_growth_mib:.0f} MiB anonymous (the KV "
        f"buffers, zeroed when allocated, and the rest); compute buffer {buffers.compute_mib:.0f} MiB reserved, "
        "resident as used"
    )
    if not memory_table:
        print(f"{'':15}every setting at 4K, 16K and 32K, each measured in a fresh process: cove doctor --memory")


def _report_kv_settings(path: Path, config: ModelConfig) -> None:
    """Every KV setting at 4K, 16K and 32K tokens, each loaded in a fresh process: llama.cpp's KV buffers, the
    computed size, and what the load added to the process's resident memory."""
    from tqdm import tqdm

    from cove.inference.model.kv_measure import measure_in_child
    from cove.inference.model.kv_memory import SETTINGS

    contexts = (4096, 16384, 32768)
    print(f"{'':5}kv cache by setting, MiB, each loaded in a fresh process: llama.cpp's KV buffers, computed, x less")
    print(f"{'':5}than f16 full-size (llama.cpp's), resident memory the load added and the anonymous part of it")
    print(f"{'':5}{'setting':<37} {'n_ctx':>6} {'llama.cpp':>9} {'computed':>8} {'x less':>6} {'+load':>6} {'anon':>5}")
    runs = [(setting, n_ctx) for n_ctx in contexts for setting in SETTINGS]
    full: dict[int, float] = {}
    for (name, kv_type, swa_full), n_ctx in tqdm(runs, desc="measuring", file=sys.stderr, leave=False):
        child = dataclasses.replace(config, n_ctx=n_ctx, kv_type=kv_type, swa_full=swa_full)
        measured = measure_in_child(path, child)
        kv = measured.buffers.kv_total_mib
        full.setdefault(n_ctx, kv)  # SETTINGS lists f16 full-size first
        tqdm.write(
            f"{'':5}{name:<37} {n_ctx:>6} {kv:>9.1f} {measured.computed_mib:>8.1f} {full[n_ctx] / kv:>5.1f}x "
            f"{measured.load_growth_mib:>+6.0f} {measured.anon_growth_mib:>+5.0f}",
            file=sys.stdout,
        )


def cmd_daemon(args: argparse.Namespace) -> int:
    """Run the agent daemon in the foreground, or ask the running one for its status, or stop it."""
    import logging

    from cove.daemon_client import DaemonClient
    from cove.runtime import daemon_paths

    paths = daemon_paths()
    if args.action == "run":
        from cove.agent.daemon import run_daemon

        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        run_daemon(paths, args.idle_timeout, load_config(None).config)
        return 0
    with DaemonClient(paths.socket) as client:
        if args.action == "status":
            status = client.call(StatusParams())
            print(json.dumps(status, indent=2))
            print(_hosted_here(status), file=sys.stderr)
        else:
            client.call(ShutdownParams())
            print("stopped", file=sys.stderr)
    return 0


def cmd_memory(args: argparse.Namespace) -> int:
    """Add a note to the project's (or the user's) memory, or search it; starts the daemon when it is absent."""
    from cove.daemon_client import ensure_daemon
    from cove.runtime import daemon_paths

    project = str(find_project_root(Path.cwd()) or Path.cwd())
    with ensure_daemon(daemon_paths()) as client:
        if args.action == "add":
            scope = "user" if args.user else "project"
            note = client.call(MemoryWrite(args.text, project, scope, args.kind))
            print(f"remembered ({note['scope']}, {note['kind']}): {note['text']}")
        else:
            for note in client.call(MemorySearch(args.text, project)):
                print(f"[{note['scope']}/{note['kind']}] {note['text']}")
    return 0


def _cmd_agent(args: argparse.Namespace) -> int:
    from cove.cli.agent_terminal import cmd_agent

    return cmd_agent(args)


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the acceptance rate of inline suggestions, per day and in all."""
    from cove.runtime import state_directory
    from cove.server.completion.stats import load, report

    path = state_directory() / "stats.json"
    days = load(path)
    if not days:
        print(f"no suggestions counted yet ({path})")
        return 0
    print(report(days))
    return 0


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="cove", description="A private AI coding assistant.")
    parser.add_argument("--version", action="version", version=f"cove {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lsp = sub.add_parser("lsp", help="serve LSP over stdio (point your editor here)")
    lsp.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    lsp.add_argument("--log-file", help="write the log here instead of stderr")
    lsp.set_defaults(run=cmd_lsp)
    agent_protocol = sub.add_parser("acp", help="serve the Agent Client Protocol over stdio (Zed, JetBrains, ...)")
    agent_protocol.set_defaults(run=cmd_acp)
    complete = sub.add_parser("complete", help="complete the code at FILE:LINE[:COL] with the local model")
    complete.add_argument("position", metavar="FILE:LINE[:COL]")
    complete.add_argument("--multiline", choices=["auto", "never", "always"], help="override completion.multiline")
    complete.add_argument(
        "--show-prompt", action="store_true", help="print the prompt (workspace context, window) to stderr first"
    )
    complete.set_defaults(run=cmd_complete)
    model = sub.add_parser("model", help="print the model's path, assembling the default model when missing")
    model.add_argument("--verify", action="store_true", help="also check the default model's sha256")
    model.set_defaults(run=cmd_model)
    daemon = sub.add_parser("daemon", help="the agent daemon: run it in the foreground, or status / stop")
    daemon.add_argument("action", nargs="?", default="run", choices=["run", "status", "stop"])
    daemon.add_argument("--idle-timeout", type=float, default=600.0, help="seconds without clients before it exits")
    daemon.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    daemon.set_defaults(run=cmd_daemon)
    agent = sub.add_parser("agent", help="run a task with the agent in this project, streaming the transcript")
    agent.add_argument("task")
    agent.add_argument("--mode", choices=["ask", "auto-read", "full-auto"], help="approvals (default: agent.mode)")
    agent.add_argument("--max-steps", type=_positive, help="model calls at most (default: agent.max_steps)")
    agent.add_argument("--no-plan", action="store_true", help="skip the plan and its approval (agent.plan_first)")
    agent.set_defaults(run=_cmd_agent)
    stats = sub.add_parser("stats", help="suggestions shown, accepted and dismissed (kept on this machine)")
    stats.set_defaults(run=cmd_stats)
    checkpoint_commands.add_parsers(sub)
    memory = sub.add_parser("memory", help="add to or search the memory the agent keeps (starts the daemon if needed)")
    memory.add_argument("action", choices=["add", "search"])
    memory.add_argument("text", help="the note to remember, or the words to search for")
    memory.add_argument("--user", action="store_true", help="remember for every project, not just this one")
    memory.add_argument("--kind", default="fact", choices=["fact", "convention", "decision"])
    memory.set_defaults(run=cmd_memory)
    commit_command.add_parser(sub)
    index_command.add_parser(sub)
    doctor = sub.add_parser("doctor", help="check versions, config, the model and what runs offline")
    doctor.add_argument(
        "--memory",
        action="store_true",
        help="measure every KV cache setting at 4K, 16K and 32K tokens, each in a fresh process (twelve model loads)",
    )
    doctor.set_defaults(run=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors print one line and exit non-zero, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except CoveError as err:
        print(f"cove: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
