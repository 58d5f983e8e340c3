from __future__ import annotations

import pytest

from cove.config import RoutingConfig
from cove.errors import ConfigError
from cove.inference.routing import Slot, chain, route


def test_every_chain_ends_at_the_local_model() -> None:
    config = RoutingConfig(plan=("remote",))
    assert chain(config, Slot.PLAN) == ("remote", "local")
    assert chain(config, Slot.COMPLETE) == ("daemon", "local"), "completions from the daemon's model by default"
    assert chain(RoutingConfig(complete=("daemon",)), Slot.COMPLETE) == ("daemon", "local")


def test_the_route_falls_back_and_says_why() -> None:
    config = RoutingConfig()
    down = route(config, Slot.EXECUTE, lambda target: "no remote.base_url configured")
    assert down.target == "local"
    assert down.describe() == "route execute: local (passed over remote: no remote.base_url configured)"
    up = route(config, Slot.PLAN, lambda target: None)
    assert up.target == "remote" and up.describe() == "route plan: remote"


def test_unknown_targets_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"routing\.critique: unknown target"):
        chain(RoutingConfig(critique=("gpt-9",)), Slot.CRITIQUE)


def test_only_completions_come_from_the_daemon() -> None:
    """The agent runs in the daemon: its slots name the model, not the daemon."""
    with pytest.raises(
        ConfigError, match=r"routing\.plan: unknown target\(s\) \['daemon'\]; use \['local', 'remote'\]"
    ):
        chain(RoutingConfig(plan=("daemon", "local")), Slot.PLAN)
