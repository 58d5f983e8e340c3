from cove.inference.completion.prompt_window import build_window, choose_anchor, line_starts, offset_of

TEXT = "".join(f"line number {i}\n" for i in range(200))  # 15-16 characters a line


def test_line_starts() -> None:
    assert line_starts("a\nbc\n") == [0, 2, 5]


def test_window_starts_on_a_line_boundary_within_budget() -> None:
    cursor = TEXT.index("line number 150") + 5
    window = build_window(TEXT, cursor, None, max_prefix_chars=300, max_suffix_chars=40)
    assert window.prefix.startswith("line number ")
    assert len(window.prefix) <= 300
    assert window.prefix.endswith("\nline ")
    assert window.line_prefix == "line "
    assert window.line_suffix == "number 150"
    assert window.suffix == TEXT[cursor : cursor + 40]


def test_anchor_stays_while_typing_moves_forward() -> None:
    starts = line_starts(TEXT)
    cursor = starts[100]
    first = choose_anchor(starts, cursor, None, 300)
    anchors = {choose_anchor(starts, cursor + step, first, 300) for step in range(0, 80)}
    assert anchors == {first}, "the prompt's start must not move while the prefix still fits"


def test_anchor_moves_with_headroom_when_prefix_overflows() -> None:
    starts = line_starts(TEXT)
    first = choose_anchor(starts, starts[100], None, 300)
    far = starts[140]
    moved = choose_anchor(starts, far, first, 300)
    assert moved > first
    assert far - starts[moved] <= 0.7 * 300 + 16


def test_anchor_resets_when_cursor_goes_above_it() -> None:
    starts = line_starts(TEXT)
    first = choose_anchor(starts, starts[100], None, 300)
    assert choose_anchor(starts, starts[10], first, 300) < first


def test_one_long_line_keeps_its_end() -> None:
    text = "x" * 5000
    window = build_window(text, 4000, None, max_prefix_chars=300, max_suffix_chars=10)
    assert window.prefix == "x" * 300


def test_offset_of_clamps_to_line_end() -> None:
    assert offset_of("ab\ncd", 1, 1) == 4
    assert offset_of("ab\ncd", 0, 99) == 2
    assert offset_of("ab\ncd", 9, 0) == 5
