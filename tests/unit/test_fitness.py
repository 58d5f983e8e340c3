"""What the configured models can do (inference/model/fitness.py), from real GGUF headers: the default base model
completes and cannot serve the agent; a remote server or a local model with a chat template can. `cove doctor` says
so, and `cove agent` refuses with what to set instead of starting a run that could only answer "..."."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cove.config import CoveConfig, ModelConfig, RemoteConfig, RoutingConfig
from cove.errors import ModelError
from cove.inference.model.fitness import AGENT_HINT, agent_fitness, check_agent, completion_fitness, model_facts
from cove.inference.model.gguf_meta import read_metadata
from tests.fim_model import CHAT_TEMPLATE, write_fim_model


def test_the_default_models_facts(model_path: Path) -> None:
    facts = model_facts(model_path)
    assert (facts.name, facts.architecture, facts.parameters, facts.size) == ("Gemma 3 270m", "gemma3", 270e6, "270M")
    assert facts.context_length == 32768 and not facts.chat_template


def test_a_chat_template_and_a_size_label_are_read(tmp_path: Path) -> None:
    path = write_fim_model(tmp_path / "chat.gguf", chat=True, size_label="1.5B")
    meta = read_metadata(path)
    assert meta["tokenizer.chat_template"] == CHAT_TEMPLATE and meta["general.architecture"] == "qwen2"
    facts = model_facts(path)
    assert facts.chat_template and facts.parameters == 1_500_000_000 and facts.size == "1.5B"


def test_not_a_gguf_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelError, match="is not a GGUF file"):
        read_metadata(bad)


def test_the_default_model_completes_and_cannot_serve_the_agent(model_path: Path) -> None:
    facts = model_facts(model_path)
    assert completion_fitness(facts).fit
    agent = agent_fitness(CoveConfig(), facts)
    assert not agent.fit and agent.hint == AGENT_HINT
    assert "base model without a chat template" in agent.reason and "the agent's plan, execute to it" in agent.reason


def test_a_remote_server_serves_the_agent(model_path: Path) -> None:
    remote = CoveConfig(remote=RemoteConfig(base_url="http://127.0.0.1:8080/v1", model="qwen"))
    fitness = agent_fitness(remote, model_facts(model_path))
    assert fitness.fit and fitness.reason == "the agent's model is qwen at http://127.0.0.1:8080/v1"
    # compact routes to the local model by default: it works (a summary falls back to a list of calls), weakly.
    assert fitness.warning == "compact: routed to the local base model (weak; route to remote)"
    everything = CoveConfig(remote=remote.remote, routing=RoutingConfig(compact=("remote", "local")))
    assert check_agent(everything).fit and not check_agent(everything).warning


def test_a_local_chat_model_serves_the_agent_with_a_warning_when_small(tmp_path: Path) -> None:
    small = write_fim_model(tmp_path / "small.gguf", chat=True, size_label="500M")
    fitness = check_agent(CoveConfig(model=ModelConfig(path=str(small))))
    assert fitness.fit and "expect weak plans" in fitness.warning
    large = write_fim_model(tmp_path / "large.gguf", chat=True, size_label="7B")
    fitness = check_agent(CoveConfig(model=ModelConfig(path=str(large))))
    assert fitness.fit and not fitness.warning and "7.0B" in fitness.reason


def test_doctor_says_what_each_workload_can_do(clean_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "cove.cli", "doctor"], env=clean_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout  # an unfit agent is not a broken installation
    assert "ok  complete   Gemma 3 270m (270M) completes code" in done.stdout, done.stdout
    assert "off  agent      the local model (Gemma 3 270m, 270M) is a base model" in done.stdout
    assert f"to enable it: {AGENT_HINT}" in done.stdout


def test_cove_agent_refuses_with_what_to_set(tmp_path: Path, agent_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cove.cli", "agent", "Add a docstring to mean"],
        env=agent_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot plan or call tools" in done.stderr and "[remote] base_url" in done.stderr
    assert not (Path(agent_env["XDG_RUNTIME_DIR"]) / "cove" / "daemon.sock").exists(), "no run, no daemon started"
