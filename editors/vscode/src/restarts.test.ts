import { describe, expect, it } from "vitest";

import { MAX_RESTARTS, RESTART_WINDOW_MS, RestartPolicy, serverGone } from "./restarts";

describe("RestartPolicy", () => {
  it("restarts and says so, then gives up after too many stops in the window", () => {
    const policy = new RestartPolicy();
    const first = policy.stopped(0);
    expect(first.restart).toBe(true);
    expect(first.message).toBe(
      "Cove: the server stopped unexpectedly and was restarted. Its log is in the Cove output.",
    );
    for (let stop = 2; stop <= MAX_RESTARTS; stop++) {
      const decision = policy.stopped(stop * 1000);
      expect(decision.restart).toBe(true);
      expect(decision.message).toContain(`(${stop} times in 3 minutes)`);
    }
    const last = policy.stopped(10_000);
    expect(last.restart).toBe(false);
    expect(last.message).toContain("stopped 5 times in 3 minutes and was not restarted");
    expect(last.message).toContain("Cove: Restart server starts it again");
  });

  it("forgets stops older than the window, and all of them on reset", () => {
    const policy = new RestartPolicy(1, RESTART_WINDOW_MS);
    expect(policy.stopped(0).restart).toBe(true);
    expect(policy.stopped(RESTART_WINDOW_MS + 1).restart).toBe(true); // the first is out of the window
    expect(policy.stopped(RESTART_WINDOW_MS + 2).restart).toBe(false);
    policy.reset();
    expect(policy.stopped(RESTART_WINDOW_MS + 3).restart).toBe(true);
  });
});

describe("serverGone", () => {
  it("tells a write to a closed pipe from other errors", () => {
    expect(serverGone(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))).toBe(true);
    expect(serverGone(new Error("write EPIPE"))).toBe(true);
    expect(serverGone({ code: "ECONNRESET" })).toBe(true);
    expect(serverGone(new Error("Header must provide a Content-Length property."))).toBe(false);
    expect(serverGone(undefined)).toBe(false);
  });
});
