"""What the configured models can do, per workload, and what would make an unfit one work.

A base model without a chat template (the default, Gemma 3 270M base) completes code well and cannot plan or call
tools usefully: its calls are well-formed under the grammar, its choices are not. The agent is fit when plan and
execute route to a remote server (`[remote] base_url`; what it serves is the user's choice) or to a local model with a
chat template; critique and compact on a base model, or a local chat model below MIN_AGENT_PARAMS, only warn.
Completions are fit on any model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cove.config import CoveConfig
from cove.errors import ModelError
from cove.inference.model.gguf_meta import Value, read_metadata
from cove.inference.routing import Slot, route

#: Parameters below which a local chat model is warned about for the agent.
MIN_AGENT_PARAMS = 1_000_000_000
#: The agent's workloads that need a chat model, and those that only do better with one.
CORE_SLOTS = (Slot.PLAN, Slot.EXECUTE)
AUXILIARY_SLOTS = (Slot.CRITIQUE, Slot.COMPACT)
#: What to set, said wherever an agent feature is off.
AGENT_HINT = (
    "set [remote] base_url to a chat model's server (llama-server, vLLM, Ollama: e.g. qwen2.5-coder:7b-instruct), "
    "or [model] path to an instruct GGUF with a chat template (e.g. Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf)"
)


@dataclass(frozen=True)
class ModelFacts:
    """What a GGUF says of itself."""

    name: str
    architecture: str
    parameters: int | None
    context_length: int | None
    chat_template: bool

    @property
    def size(self) -> str:
        if self.parameters is None:
            return "size unknown"
        return f"{self.parameters / 1e9:.1f}B" if self.parameters >= 1e9 else f"{self.parameters / 1e6:.0f}M"


@dataclass(frozen=True)
class Fitness:
    """Whether a workload's model can do it; `reason` says why (or who serves), `hint` what would make it work."""

    workload: str
    fit: bool
    reason: str
    warning: str = ""
    hint: str = ""


def model_facts(path: Path) -> ModelFacts:
    """The facts of the GGUF at `path` (ModelError when it cannot be read)."""
    meta = read_metadata(path)
    arch = str(meta.get("general.architecture", ""))
    return ModelFacts(
        name=str(meta.get("general.name") or path.name),
        architecture=arch,
        parameters=_parameters(meta.get("general.size_label")),
        context_length=_int(meta.get(f"{arch}.context_length")),
        chat_template="tokenizer.chat_template" in meta,
    )


def _int(value: Value | None) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _parameters(label: Value | None) -> int | None:
    """`general.size_label` ("270M", "1.5B", "8x7B") as a number of parameters."""
    match = re.fullmatch(r"(?:(\d+)x)?(\d+(?:\.\d+)?)([KMBT])", str(label or "").strip())
    if match is None:
        return None
    experts, number, unit = match.groups()
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[unit]
    return int(float(number) * scale * (int(experts) if experts else 1))


def completion_fitness(facts: ModelFacts) -> Fitness:
    return Fitness("complete", True, f"{facts.name} ({facts.size}) completes code")


def agent_fitness(config: CoveConfig, facts: ModelFacts) -> Fitness:
    """Whether the agent has a fit model: plan and execute must route to the remote server or to a local chat model;
    critique and compact on an unfit one only warn (a critique is skipped, a summary falls back to a list of calls)."""
    remote = config.remote

    def local(slots: tuple[Slot, ...]) -> list[str]:
        reason = None if remote.base_url else "no remote.base_url set"
        return [str(slot) for slot in slots if route(config.routing, slot, lambda _: reason).target == "local"]

    core, auxiliary = local(CORE_SLOTS), local(AUXILIARY_SLOTS)
    serving = f"{remote.model or 'the model'} at {remote.base_url}" if not core else ""
    if core and not facts.chat_template:
        reason = (
            f"the local model ({facts.name}, {facts.size}) is a base model without a chat template: it completes code "
            f"but cannot plan or call tools, and [routing] sends the agent's {', '.join(core)} to it"
        )
        return Fitness("agent", False, reason, hint=AGENT_HINT)
    warnings = []
    if auxiliary and not facts.chat_template:
        warnings.append(f"{', '.join(auxiliary)}: routed to the local base model (weak; route to remote)")
    if (core or auxiliary) and facts.chat_template and (facts.parameters or MIN_AGENT_PARAMS) < MIN_AGENT_PARAMS:
        warnings.append(f"{facts.name} has {facts.size} parameters: expect weak plans and tool choices")
    reason = (
        f"the agent's model is {serving}"
        if serving
        else f"the local chat model {facts.name} ({facts.size}) serves {', '.join(core)}"
    )
    return Fitness("agent", True, reason, "; ".join(warnings))


def check_agent(config: CoveConfig) -> Fitness:
    """`agent_fitness` with the local model's facts read from its file (only when a slot routes to it); a model that
    cannot be read (not assembled yet) is not judged: fit, with a warning."""
    remote = config.remote
    if all(
        route(config.routing, slot, lambda _: None if remote.base_url else "no").target == "remote"
        for slot in (*CORE_SLOTS, *AUXILIARY_SLOTS)
    ):
        return agent_fitness(config, ModelFacts("", "", None, None, False))
    from cove.inference.model.model_files import locate_model

    try:
        facts = model_facts(locate_model(config.model, assemble_missing=False))
    except ModelError as err:
        return Fitness("agent", True, "the local model could not be read", warning=str(err))
    return agent_fitness(config, facts)
