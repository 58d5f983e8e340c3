import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { CURSOR_DEBOUNCE_MS, Debounced, readyFor, selectedLines } from "./cursor";

describe("Debounced", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reports once the moves stop, with the last one", () => {
    const settled: string[] = [];
    const moves = new Debounced<string>(CURSOR_DEBOUNCE_MS, (value) => settled.push(value));
    moves.moved("a");
    vi.advanceTimersByTime(CURSOR_DEBOUNCE_MS - 1);
    moves.moved("b"); // still moving: the wait starts again
    vi.advanceTimersByTime(CURSOR_DEBOUNCE_MS - 1);
    expect(settled).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(settled).toEqual(["b"]);
    vi.advanceTimersByTime(10 * CURSOR_DEBOUNCE_MS);
    expect(settled).toEqual(["b"]); // once per rest
    moves.moved("c");
    vi.advanceTimersByTime(CURSOR_DEBOUNCE_MS);
    expect(settled).toEqual(["b", "c"]);
  });

  it("forgets a pending move when cancelled", () => {
    const settled: string[] = [];
    const moves = new Debounced<string>(CURSOR_DEBOUNCE_MS, (value) => settled.push(value));
    moves.moved("a");
    moves.cancel();
    vi.advanceTimersByTime(10 * CURSOR_DEBOUNCE_MS);
    expect(settled).toEqual([]);
  });
});

describe("selectedLines", () => {
  it("reports the lines of a selection, whichever way it was made", () => {
    const lines = { start: { line: 3, character: 0 }, end: { line: 5, character: 0 } };
    expect(selectedLines({ line: 3, character: 4 }, { line: 5, character: 2 })).toEqual(lines);
    expect(selectedLines({ line: 5, character: 2 }, { line: 3, character: 4 })).toEqual(lines);
  });

  it("leaves out a last line the selection only touches, and reports no empty selection", () => {
    expect(selectedLines({ line: 3, character: 0 }, { line: 6, character: 0 })).toEqual({
      start: { line: 3, character: 0 },
      end: { line: 5, character: 0 },
    });
    expect(selectedLines({ line: 3, character: 4 }, { line: 3, character: 4 })).toBeUndefined();
  });
});

describe("readyFor", () => {
  it("is true only for the active editor's document", () => {
    const uri = "file:///home/me/my%20module.py";
    expect(readyFor(uri, { textDocument: { uri } })).toBe(true);
    expect(readyFor(uri, { textDocument: { uri: "file:///home/me/other.py" } })).toBe(false);
    expect(readyFor(undefined, { textDocument: { uri } })).toBe(false);
    expect(readyFor(uri, null)).toBe(false);
    expect(readyFor(uri, { textDocument: 42 })).toBe(false);
    expect(readyFor(uri, "garbage")).toBe(false);
  });
});
