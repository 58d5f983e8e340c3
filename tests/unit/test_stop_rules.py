import pytest

from cove.inference.completion.stop_rules import choose_mode, trim_suffix_overlap
from cove.protocol.jobs import CompletionMode, StopRule

LINE, BLOCK = CompletionMode.LINE, CompletionMode.BLOCK


@pytest.mark.parametrize(
    ("line_prefix", "line_suffix", "setting", "mode"),
    [
        ("    x = fo", "", "auto", LINE),
        ("def f(x):", "", "auto", BLOCK),
        ("    ", "", "auto", BLOCK),
        ("print(", ")", "auto", LINE),
        ("def f(x):", "", "never", LINE),
        ("x = 1", "", "always", BLOCK),
    ],
)
def test_choose_mode(line_prefix: str, line_suffix: str, setting: str, mode: CompletionMode) -> None:
    assert choose_mode(line_prefix, line_suffix, setting) is mode  # type: ignore[arg-type]


def test_line_stops_at_newline() -> None:
    rule = StopRule(LINE, "    x = fo", "", 8)
    assert rule.cut("o(1)") is None
    assert rule.cut("o(1)\n    y") == "o(1)"


def test_line_after_opener_may_start_on_the_next_line() -> None:
    rule = StopRule(LINE, "def f(x):", "", 8)
    assert rule.cut("\n    return x") is None
    assert rule.cut("\n    return x\n") == "\n    return x"


def test_line_mid_statement_does_not_jump_lines() -> None:
    assert StopRule(LINE, "x = compute()", "", 8).cut("\nnext_line") == ""


def test_block_stops_at_dedent_after_opener() -> None:
    rule = StopRule(BLOCK, "def f(x):", "", 8)
    assert rule.cut("\n    y = x\n    return y\n") is None
    assert rule.cut("\n    y = x\n    return y\n\ndef g") == "\n    y = x\n    return y"


def test_block_on_empty_line_keeps_the_cursors_block() -> None:
    rule = StopRule(BLOCK, "    ", "", 8)
    assert rule.cut("a = 1\n    b = 2\nc") == "a = 1\n    b = 2"


def test_block_keeps_a_closing_bracket_line() -> None:
    rule = StopRule(BLOCK, "    x = call(", "", 8)
    assert rule.cut("\n        1,\n        2,\n    )\n    y") == "\n        1,\n        2,\n    )"


def test_block_stops_after_two_blank_lines_and_at_line_limit() -> None:
    assert StopRule(BLOCK, "    ", "", 8).cut("a\n\n\n    b") == "a"
    rule = StopRule(BLOCK, "def f():", "", 2)
    assert rule.cut("\n    a\n    b\n    c") == "\n    a\n    b"


def test_finish_drops_a_partial_line_of_a_cut_short_block() -> None:
    rule = StopRule(BLOCK, "def f():", "", 8)
    assert rule.finish("\n    a = 1\n    b = som", ended=False) == "\n    a = 1"
    assert rule.finish("\n    a = 1\n    b = 2", ended=True) == "\n    a = 1\n    b = 2"
    assert StopRule(LINE, "x = ", "", 8).finish("compute(a, ", ended=False) == "compute(a,"
    assert rule.finish("\n    a = some", ended=False) == "\n    a = some", "the first line is kept even if cut"


@pytest.mark.parametrize(
    ("completion", "line_suffix", "kept"),
    [
        ('"hi")', ")", '"hi"'),
        ("a, b):", "):", "a, b"),
        ("value", ")", "value"),
        ("x)", "x)", "x)"),  # only closers are trimmed
    ],
)
def test_trim_line_suffix(completion: str, line_suffix: str, kept: str) -> None:
    assert trim_suffix_overlap(completion, line_suffix, line_suffix) == kept


def test_trim_block_lines_already_below() -> None:
    completion = "\n    a = 1\n    return a"
    assert trim_suffix_overlap(completion, "", "\n    return a\n") == "\n    a = 1"
