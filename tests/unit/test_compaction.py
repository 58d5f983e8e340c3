"""The compaction stages on a synthetic but realistic context, with a counting archive and summariser."""

from __future__ import annotations

from collections.abc import Sequence

from cove.agent.compaction import INVARIANTS_TAG, CompactionPolicy, ContextCompactor, Turn


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
