"""Ranking a long prompt's lines by the code's structure (what a shrinking KV cache drops first)."""

from __future__ import annotations

from cove.inference.model.code_structure import Rank, choose_kept, dropped_spans, line_ranks, token_lines, token_ranks

SOURCE = '''"""Module doc
spanning lines."""
import os

LIMIT = 5  # a trailing comment keeps its line

# a comment
@decorator
def far(a,
        b):
    """Doc."""
    x = 1
    return x

class K:
    attr = 1
    def m(self):
        s = """long
string
here"""
        return s
    def near(self):
        y = 2
'''


def ranks_by_line() -> dict[str, Rank]:
    return {line.strip(): rank for line, rank in zip(SOURCE.split("\n"), line_ranks(SOURCE, "python"), strict=True)}


def test_python_lines_are_ranked_by_what_they_are() -> None:
    ranks = ranks_by_line()
    assert ranks['"""Module doc'] == ranks['"""Doc."""'] == ranks["# a comment"] == ranks["string"] == Rank.FILLER
    assert ranks["import os"] == ranks["LIMIT = 5  # a trailing comment keeps its line"] == Rank.HEADER
    assert ranks["@decorator"] == ranks["def far(a,"] == ranks["b):"] == ranks["def m(self):"] == Rank.HEADER
    assert ranks["x = 1"] == ranks["return s"] == Rank.BODY  # bodies of functions away from the end
    assert ranks["attr = 1"] == Rank.CODE
    # The function the prompt ends in stays whole, with the headers of the scopes around it.
    assert ranks["class K:"] == ranks["def near(self):"] == ranks["y = 2"] == Rank.ENCLOSING
    assert ranks[""] == Rank.FILLER


def test_without_a_grammar_indentation_ranks_the_lines() -> None:
    text = "top()\n    inner()\n// note\nlast()\n    tail()"
    assert line_ranks(text, None) == [Rank.HEADER, Rank.BODY, Rank.FILLER, Rank.ENCLOSING, Rank.ENCLOSING]
    assert line_ranks(text, "no-such-language") == line_ranks(text, None)


def test_a_token_belongs_to_the_line_it_starts_on() -> None:
    pieces = ["import", " os", "\n\n", "def", " f", "():\n", "    pass"]
    assert token_lines(pieces) == [0, 0, 0, 2, 2, 2, 3]
    ranks = token_ranks(pieces, "python")
    assert ranks[0] == Rank.HEADER and ranks[-1] == Rank.ENCLOSING


def test_the_lowest_rank_and_furthest_back_go_first_sinks_and_recent_stay() -> None:
    ranks = [3, 0, 1, 0, 1, 2, 0, 4, 4]
    kept = choose_kept(ranks, keep=6, sinks=1, recent=2)
    # Three go: every filler token (the ranks 0) before any body.
    assert kept == [True, False, True, False, True, True, False, True, True]
    assert dropped_spans(kept) == [(1, 2), (3, 4), (6, 7)]
    kept = choose_kept(ranks, keep=5, sinks=1, recent=2)
    assert kept == [True, False, False, False, True, True, False, True, True]
    assert choose_kept(ranks, keep=20, sinks=1, recent=2) == [True] * len(ranks)
    # Protected tokens stay even when they alone exceed what may be kept.
    assert choose_kept(ranks, keep=1, sinks=1, recent=2) == [True] + [False] * 6 + [True, True]


def test_a_window_that_starts_inside_a_docstring_is_read_with_its_opener() -> None:
    """Read as it is, the docstring's closing quotes would open a string running to the next docstring: the imports
    and functions between them would rank as filler."""
    window = 'the end of a module docstring.\n"""\n\nimport os\n\n\ndef far(a):\n    """Doc."""\n    return a\n\n\n'
    window += "def near(b):\n    return b\n"
    ranks = dict(zip(window.split("\n"), line_ranks(window, "python"), strict=True))
    assert ranks["the end of a module docstring."] == ranks['    """Doc."""'] == Rank.FILLER
    assert ranks["import os"] == ranks["def far(a):"] == Rank.HEADER
    assert ranks["    return a"] == Rank.BODY and ranks["    return b"] == Rank.ENCLOSING
