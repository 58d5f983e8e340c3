"""What of Cove's would reach beyond this machine with a config: for `cove doctor`'s offline line. Loopback servers
(a llama-server, vLLM or Ollama on this machine) stay on it; `[remote] offline` refuses the rest before connecting."""

from __future__ import annotations

from cove.config import CoveConfig
from cove.inference.http_endpoint import is_loopback
from cove.inference.routing import Slot, chain


def outbound(config: CoveConfig) -> list[str]:
    """One line per workload that would send something off this machine, naming where (empty: nothing would)."""
    found = []
    remote = config.remote
    if remote.base_url and not is_loopback(remote.base_url):
        slots = [slot.value for slot in Slot if "remote" in chain(config.routing, slot)]
        if slots:
            refused = " (refused: [remote] offline = true)" if remote.offline else ""
            found.append(f"{', '.join(slots)} to {remote.base_url}{refused}")
    events = config.events
    if events.mqtt_host and not is_loopback(f"mqtt://{events.mqtt_host}"):
        found.append(f"events to the MQTT broker {events.mqtt_host}:{events.mqtt_port}")
    return found


def offline_line(config: CoveConfig) -> str:
    """`cove doctor`'s line: what runs offline, and what would reach out."""
    reaching = outbound(config)
    if not reaching:
        return f"ok  {'offline':<10} nothing leaves this machine: completions, agent, events run here or on loopback"
    return f"note {'offline':<10} reaches beyond this machine: " + "; ".join(reaching)
