import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { BatchedChanges, DIAGNOSTICS_DEBOUNCE_MS } from "./diagnostics";

describe("BatchedChanges", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends each changed document once after the burst", () => {
    const sent: string[] = [];
    const changes = new BatchedChanges(DIAGNOSTICS_DEBOUNCE_MS, (uri) => sent.push(uri));
    changes.changed(["file:///a.py", "file:///b.py"]);
    vi.advanceTimersByTime(DIAGNOSTICS_DEBOUNCE_MS - 1);
    changes.changed(["file:///a.py"]); // still changing: the wait starts again
    vi.advanceTimersByTime(DIAGNOSTICS_DEBOUNCE_MS - 1);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual(["file:///a.py", "file:///b.py"]);
    vi.advanceTimersByTime(DIAGNOSTICS_DEBOUNCE_MS * 4);
    expect(sent).toHaveLength(2);
  });

  it("an empty change starts no wait, and cancel forgets what is pending", () => {
    const sent: string[] = [];
    const changes = new BatchedChanges(DIAGNOSTICS_DEBOUNCE_MS, (uri) => sent.push(uri));
    changes.changed([]);
    changes.changed(["file:///a.py"]);
    changes.cancel();
    vi.advanceTimersByTime(DIAGNOSTICS_DEBOUNCE_MS * 2);
    expect(sent).toEqual([]);
    changes.changed(["file:///c.py"]);
    vi.advanceTimersByTime(DIAGNOSTICS_DEBOUNCE_MS);
    expect(sent).toEqual(["file:///c.py"]);
  });
});
