"""The structure overflow policy's choices, on a vocabulary of whole lines (no model): what a long prompt keeps, and
that the next keystrokes keep the same, so that what the context holds is reused."""

from __future__ import annotations

from cove.inference.model.overflow import StructureOverflow, without_spans

#: A module whose docstring, comments and distant bodies can go; a token is a line here.
LINES = [
    '"""A module.',
    "",
    "It does things.",
    '"""',
    "import os",
    "# a comment",
    "def far(a):",
    "    x = a + 1",
    "    return x",
    "def near(b):",
    "    y = b",
]


def vocabulary_piece(token: int) -> bytes:
    return (LINES[token] + "\n").encode()


def test_without_spans_leaves_out_each_span() -> None:
    assert without_spans(list(range(8)), [(1, 3), (5, 6)]) == [0, 3, 4, 6, 7]
    assert without_spans([1, 2], []) == [1, 2]


def test_a_long_prompt_keeps_its_structure_and_the_next_keystroke_keeps_the_same() -> None:
    policy = StructureOverflow(n_ctx=7, sinks=1, piece=vocabulary_piece, recent_share=0.4)
    prompt = list(range(len(LINES)))
    assert policy.fit(prompt[:6], "python") == prompt[:6]  # it fits: nothing is cut
    kept = policy.fit(prompt, "python")
    # Five (three quarters of the context): the sink, the recent window, then the import and the far signature;
    # the docstring, the comment and the far body go.
    assert [LINES[t] for t in kept] == ['"""A module.', "import os", "def far(a):", "def near(b):", "    y = b"]
    # A keystroke later (a token more) the same spans are left out: what is held stays the prefix.
    longer = [*prompt, 10]
    assert policy.fit(longer, "python") == [*kept, 10]
    # Until the rest no longer fits: then a new choice, down to three quarters again.
    longest = [*longer, 10, 10]
    assert len(policy.fit(longest, "python")) == 5


def test_an_edit_inside_a_span_left_out_makes_a_new_choice() -> None:
    policy = StructureOverflow(n_ctx=7, sinks=1, piece=vocabulary_piece, recent_share=0.4)
    prompt = list(range(len(LINES)))
    policy.fit(prompt, "python")
    assert policy.selection is not None
    first_span = policy.selection.spans[0]
    edited = [*prompt[: first_span[0]], 5, *prompt[first_span[0] :]]  # a comment line added inside the docstring
    kept = policy.fit(edited, "python")
    # Chosen afresh: the old spans, applied to the edited prompt, would keep the docstring's end and drop the import.
    assert [LINES[t] for t in kept] == ['"""A module.', "import os", "def far(a):", "def near(b):", "    y = b"]


def test_by_default_the_latest_three_quarters_of_what_is_kept_stay_whole() -> None:
    policy = StructureOverflow(n_ctx=400, sinks=4, piece=vocabulary_piece)
    prompt = [index % len(LINES) for index in range(1000)]
    kept = policy.fit(prompt, "python")
    assert len(kept) == 300 and kept[-225:] == prompt[-225:] and kept[:4] == prompt[:4]
