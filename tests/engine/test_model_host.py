"""The host's models within `[daemon] model_memory_mib` (agent/model_host.py), with the real default model and the
tiny FIM model: equal specs share one model; a model asked for beyond the budget unloads the least recently used
idle one; a budget that holds both keeps both."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from cove.agent.model_host import ModelHost
from cove.config import ModelConfig, load_config
from cove.errors import ModelError
from cove.protocol.params import ModelSpec

pytestmark = pytest.mark.model


def host_with(tmp_path: Path, budget: str) -> ModelHost:
    """The host of a daemon whose user file says `budget` under [daemon]."""
    (tmp_path / "xdg" / "cove").mkdir(parents=True, exist_ok=True)
    (tmp_path / "xdg" / "cove" / "config.toml").write_text(f"[daemon]\n{budget}")
    return ModelHost(load_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).config)


def tiny(fim_model: Path, n_ctx: int = 512) -> ModelSpec:
    return dataclasses.replace(ModelSpec(), model=ModelConfig(path=str(fim_model), n_ctx=n_ctx))


def test_beyond_the_budget_the_least_recently_used_model_is_unloaded(tmp_path: Path, fim_model: Path) -> None:
    host = host_with(tmp_path, "model_memory_mib = 350\n")  # the default model (313 MiB at 4K) and a tiny one fit
    default = host.model()
    assert host.model(ModelSpec.of(host.config)) is default  # an equal spec: the same model
    default.load()
    small = host.model(tiny(fim_model))
    small.load()
    assert default.loaded and small.loaded and host.evictions == 0
    shorter = host.model(dataclasses.replace(ModelSpec.of(host.config), model=ModelConfig(n_ctx=2048)))
    assert shorter is not default  # another context: another model
    shorter.load()  # 241 MiB of weights more: the least recently used goes, which is enough
    assert shorter.loaded and not default.loaded and small.loaded and host.evictions == 1
    host.model(tiny(fim_model))  # asked for again: now the default at 2K is the least recently used
    assert default.load() and default.loads == 2
    assert default.loaded and not shorter.loaded and small.loaded and host.evictions == 2
    host.close()


def test_a_budget_that_holds_both_keeps_both(tmp_path: Path, fim_model: Path) -> None:
    host = host_with(tmp_path, "")  # the default budget, 2048 MiB
    default, small = host.model(), host.model(tiny(fim_model))
    default.load()
    small.load()
    assert default.loaded and small.loaded and host.evictions == 0
    held = {status["path"]: status["memory_mib"] for status in host.status()}
    assert held["the default model"] > 241 and 0 < held[str(fim_model)] < 50, held
    host.close()


def test_a_context_longer_than_the_model_was_trained_on_is_refused_before_loading(tmp_path: Path) -> None:
    """A client may ask the host for any `n_ctx`: one past the model's trained context (32K for the default) is
    refused with what to set, at once, instead of llama.cpp trying to allocate it."""
    host = host_with(tmp_path, "")
    spec = dataclasses.replace(ModelSpec.of(host.config), model=ModelConfig(n_ctx=10**12))
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"model\.n_ctx is 1000000000000, more than .* \(32768 tokens\)"):
        host.model(spec).load()
    assert time.monotonic() - started < 5 and host.model().load()  # refused at once; the daemon's model still loads
    host.close()
