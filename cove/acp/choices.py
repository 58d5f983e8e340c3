"""What a client can choose for a session: the approval mode (ACP's session modes) and the model the agent runs on
(a session config option of category "model": the routes Cove can use here). Each choice reaches the next run as
the settings it stands for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp import schema

from cove.config import CoveConfig

MODES = {
    "ask": "Ask before every change and command",
    "auto-read": "Read freely; ask before changes and commands",
    "full-auto": "Change files and run commands in the sandbox without asking",
}
#: The config option's id.
MODEL = "model"
#: The workloads of a run that the chosen model serves (compaction stays on its own route).
MODEL_SLOTS = ("execute", "plan", "critique")


def modes(current: str) -> schema.SessionModeState:
    return schema.SessionModeState(
        current_mode_id=current,
        available_modes=[schema.SessionMode(id=mode, name=mode, description=text) for mode, text in MODES.items()],
    )


def models(config: CoveConfig) -> dict[str, str]:
    """The routes the agent can run on here, by value: the remote server when one is set, and the local model."""
    found: dict[str, str] = {}
    if config.remote.base_url:
        found["remote"] = f"{config.remote.model or 'the model'} at {config.remote.base_url}"
    local = Path(config.model.path).name if config.model.path else "the default model"
    found["local"] = f"local: {local}"
    return found


def default_model(config: CoveConfig) -> str:
    """The route `[routing] execute` takes first among those available."""
    available = models(config)
    return next((target for target in config.routing.execute if target in available), "local")


def model_option(config: CoveConfig, current: str) -> schema.SessionConfigOptionSelect:
    return schema.SessionConfigOptionSelect(
        id=MODEL,
        name="Model",
        description="The model the agent plans and works with (compaction keeps its own route)",
        category="model",
        type="select",
        current_value=current,
        options=[schema.SessionConfigSelectOption(value=value, name=name) for value, name in models(config).items()],
    )


def run_settings(model: str, mcp_servers: tuple[str, ...]) -> dict[str, Any]:
    """The settings a run gets from the session's choices (the editor's layer, over the project's)."""
    settings: dict[str, Any] = {"routing": {slot: [model] for slot in MODEL_SLOTS}}
    if mcp_servers:
        settings["mcp"] = {"servers": list(mcp_servers)}
    return settings
