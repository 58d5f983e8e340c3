"""The compaction stages on a synthetic but realistic context, with a counting archive and summariser."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from cove.agent.compaction import INVARIANTS_TAG, CompactionPolicy, ContextCompactor, Turn
from cove.agent.runner import AgentSession
from cove.agent.store import MemoryStore
from cove.config import load_config
from cove.inference.chat.remote import RemoteModel
from tests.scripted.openai_server import scripted_openai_server


def words(text: str) -> int:
    return len(text.split())


def session(steps: int) -> list[Turn]:
    turns = [Turn("system", "You are Cove."), Turn("user", "Fix the parser. REQUIREMENT: keep the API.")]
    for step in range(steps):
        body = " ".join(f"line{step}_{i}" for i in range(200))
        turns += [Turn("assistant", f"reading part {step}"), Turn("tool", body, call=f"read_file(part={step})")]
    return turns


def compactor(budget: int, archived: dict[int, Turn], summaries: list[int]) -> ContextCompactor:
    def archive(turn: Turn) -> int:
        archived[len(archived) + 1] = turn
        return len(archived)

    def summarize(turns: Sequence[Turn]) -> str:
        summaries.append(len(turns))
        return "summary of calls: " + ", ".join(t.call for t in turns if t.call)

    policy = CompactionPolicy(budget_tokens=budget, protect_recent_tokens=500, preview_chars=40)
    return ContextCompactor(policy, words, archive, summarize)


def test_small_contexts_are_left_alone() -> None:
    archived: dict[int, Turn] = {}
    turns = session(2)
    out, done = compactor(100_000, archived, []).compact(turns, "plan")
    assert out == turns and done == [] and archived == {}


def test_masking_archives_old_results_and_keeps_recent_and_requirements() -> None:
    archived: dict[int, Turn] = {}
    turns = session(20)
    c = compactor(budget=int(c_tokens(turns) * 1.6), archived=archived, summaries=[])
    out, done = c.compact(turns, "plan: 1. fix")
    assert [d.stage for d in done] == ["mask"]
    assert out[1].content.endswith("keep the API.")
    assert out[2].content.startswith(INVARIANTS_TAG) and "plan: 1. fix" in out[2].content
    assert out[-1] == turns[-1], "the most recent result is protected"
    masked = [t for t in out if t.ref is not None]
    assert masked and all(f"archived #{t.ref}" in t.content for t in masked)
    assert all(archived[t.ref].content.startswith("line") for t in masked if t.ref is not None)
    assert c.tokens(out) < c.tokens(turns) / 2


def test_every_stage_runs_when_the_budget_is_tight_and_invariants_appear_once() -> None:
    archived: dict[int, Turn] = {}
    summaries: list[int] = []
    turns = session(40)
    c = compactor(budget=700, archived=archived, summaries=summaries)
    out, done = c.compact(turns, "plan")
    assert [d.stage for d in done] == ["mask", "prune", "summarize"]
    assert summaries and sum(t.content.startswith(INVARIANTS_TAG) for t in out) == 1
    summary = next(t for t in out if t.content.startswith("<summary"))
    assert "read_file(part=0)" in summary.content and "#1" in summary.content
    again, _ = c.compact(out, "plan v2")
    assert sum(t.content.startswith(INVARIANTS_TAG) for t in again) == 1
    assert "Fix the parser" in again[1].content


def c_tokens(turns: list[Turn]) -> int:
    return sum(words(t.content) + 4 for t in turns)


@pytest.mark.parametrize(
    ("percents", "stages"),
    [
        ("", ["mask"]),  # the defaults (50, 70, 85) at 90% of the budget: masking alone brings it under 70%
        ("mask_percent = 95\nprune_percent = 96\nsummarize_percent = 97\n", []),
        ("mask_percent = 95\nprune_percent = 96\nsummarize_percent = 5\n", ["summarize"]),
        ("mask_percent = 5\nprune_percent = 5\nsummarize_percent = 5\n", ["mask", "prune", "summarize"]),
    ],
)
def test_the_stage_percents_of_a_project_config_decide_which_stages_run(
    tmp_path: Path, percents: str, stages: list[str]
) -> None:
    """`[agent] mask_percent / prune_percent / summarize_percent`, read from `.cove/config.toml` into the session's
    compactor: a context at 90% of its budget goes through exactly the stages whose percent it reaches."""
    turns = session(20)
    budget = int(sum(len(t.content) // 4 + 4 for t in turns) / 0.9)  # the session counts 4 characters a token
    (tmp_path / ".cove").mkdir()
    (tmp_path / ".cove" / "config.toml").write_text(
        f"[agent]\nbudget_tokens = {budget}\nprotect_recent_tokens = 500\n{percents}"
    )
    config = load_config(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")}).config
    store = MemoryStore(tmp_path / "memory.db")
    errors: list[str] = []
    with scripted_openai_server([], summary="read twenty parts; nothing to fix yet") as server:
        model = RemoteModel(server.url, "scripted")
        agent = AgentSession(store, store.create_session(str(tmp_path), "t").id, tmp_path)
        out, done = agent.compactor(config, model, errors.append).compact(turns, "plan")
    store.close()
    assert [d.stage for d in done] == stages and not errors
    assert ("read twenty parts" in "".join(t.content for t in out)) == ("summarize" in stages)
