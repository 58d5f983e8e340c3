import { describe, expect, it } from "vitest";

import {
  LOADING_REFRESH_MS,
  REFRESH_MS,
  parseAgentStatus,
  parseCompletionStatus,
  servingBackend,
  statusDetails,
  statusView,
  type CompletionStatus,
} from "./status";

// What server/completion/completions.py `CompletionService.status` answers, wrapped as `cove.status` returns it.
const LOCAL = "the local model (gemma-3-270m-q4_k_m.gguf, 18 layers)";
const REMOTE = "qwen at http://127.0.0.1:8080/v1 (OpenAI-compatible /completions)";
const local = { name: "local", description: LOCAL, state: "ready", reason: "" };
const remoteReady = { name: "openai", description: REMOTE, state: "ready", reason: "" };
const remoteSkipped = {
  name: "openai",
  description: REMOTE,
  state: "skipped",
  reason: "cannot reach http://127.0.0.1:8080/v1: ConnectError; tried again in 24 s",
};
const DAEMON = "the Cove daemon's model (/run/user/1000/cove/daemon.sock)";
const daemonReady = { name: "daemon", description: DAEMON, state: "ready", reason: "" };
const daemonSkipped = {
  name: "daemon",
  description: DAEMON,
  state: "skipped",
  reason: "the Cove daemon went away (the daemon closed the connection); restarting it; tried again in 28 s",
};
const remoteUnset = { name: "remote", description: "", state: "unavailable", reason: "no remote.base_url set" };

function parsed(completions: unknown): CompletionStatus {
  const status = parseCompletionStatus({ completions, warm: { requested: 3 } });
  expect(status).toBeDefined();
  return status as CompletionStatus;
}

const online = { phase: "ready", offline: false, baseUrl: "http://127.0.0.1:8080/v1" } as const;
const offline = { phase: "ready", offline: true, baseUrl: "" } as const;

describe("parseCompletionStatus", () => {
  it("reads the completions part of cove.status", () => {
    expect(parseCompletionStatus({ completions: { serving: LOCAL, targets: [] } })).toEqual({
      serving: LOCAL,
      targets: [],
    });
    expect(parsed({ serving: "nothing", error: "no model file", targets: [] }).error).toBe("no model file");
  });

  it("reads the project's model and the setting that chose it, and shows them in the tooltip", () => {
    const model = { path: "/models/coder.gguf", chosen_by: "/work/app/.cove/config.toml", n_ctx: 1024 };
    const status = parsed({ serving: DAEMON, targets: [daemonReady, local], model });
    expect(status.model).toEqual({ path: "/models/coder.gguf", chosenBy: "/work/app/.cove/config.toml" });
    expect(statusView(online, status).tooltip).toContain(
      "Model: /models/coder.gguf (set by /work/app/.cove/config.toml)",
    );
    expect(parsed({ serving: LOCAL, targets: [], model: { path: 7 } }).model).toBeUndefined();
  });

  it("gives undefined for a result of another shape, and drops targets it cannot read", () => {
    expect(parseCompletionStatus(undefined)).toBeUndefined();
    expect(parseCompletionStatus(null)).toBeUndefined();
    expect(parseCompletionStatus({ serving: LOCAL, targets: [] })).toBeUndefined(); // not under "completions"
    expect(parseCompletionStatus({ completions: { serving: LOCAL } })).toBeUndefined();
    const status = parsed({ serving: LOCAL, targets: [local, { name: "x", state: "odd" }, 7, { state: "ready" }] });
    expect(status.targets).toEqual([local]);
    expect(parsed({ serving: LOCAL, targets: [{ name: "local", state: "ready" }] }).targets).toEqual([
      { name: "local", state: "ready", description: "", reason: "" },
    ]);
  });
});

describe("servingBackend", () => {
  it("is the first ready target of the chain, else the local model", () => {
    expect(servingBackend(parsed({ serving: LOCAL, targets: [] }))).toBe("local");
    expect(servingBackend(parsed({ serving: REMOTE, targets: [remoteReady, local] }))).toBe("remote");
    expect(servingBackend(parsed({ serving: LOCAL, targets: [remoteSkipped, local] }))).toBe("local");
    expect(servingBackend(parsed({ serving: LOCAL, targets: [remoteUnset, local] }))).toBe("local");
    expect(servingBackend(parsed({ serving: DAEMON, targets: [daemonReady, local] }))).toBe("daemon");
    expect(servingBackend(parsed({ serving: LOCAL, targets: [daemonSkipped, local] }))).toBe("local");
  });

  it("says loading while the model loads, and none when it failed", () => {
    expect(servingBackend(parsed({ serving: "the local model (loading)", targets: [] }))).toBe("loading");
    expect(servingBackend(parsed({ serving: "nothing", error: "no model file", targets: [] }))).toBe("none");
  });
});

describe("statusView", () => {
  it("shows the server's phase until it has said who serves, and asks soon once it is ready", () => {
    expect(statusView({ phase: "starting", offline: true }, undefined)).toMatchObject({
      text: "Cove: starting (offline)",
      severity: "ok",
    });
    expect(statusView({ ...online, phase: "failed" }, undefined)).toMatchObject({
      text: "Cove: failed",
      severity: "error",
    });
    const ready = statusView(online, parsed({ serving: LOCAL, targets: [] }));
    expect(statusView(online, undefined).refreshAfterMs).toBe(LOADING_REFRESH_MS);
    expect(ready.refreshAfterMs).toBe(REFRESH_MS);
    // A stopped server's last answer is not shown.
    expect(statusView({ ...online, phase: "stopped" }, parsed({ serving: LOCAL, targets: [] })).text).toBe(
      "Cove: stopped",
    );
  });

  it("names the backend that serves, with the offline flag", () => {
    const view = statusView(offline, parsed({ serving: LOCAL, targets: [] }));
    expect(view.text).toBe("$(sparkle) Cove: local (offline)");
    expect(view.severity).toBe("ok");
    expect(view.tooltip).toContain(`Completions: ${LOCAL}`);
    expect(view.tooltip).toContain("Offline: only the local model and servers on loopback are asked.");
    const remote = statusView(online, parsed({ serving: REMOTE, targets: [remoteReady, local] }));
    expect(remote.text).toBe("$(sparkle) Cove: remote");
    expect(remote.severity).toBe("ok");
    expect(remote.tooltip).not.toContain("Fell back");
    expect(remote.tooltip).not.toContain("Offline");
    const daemon = statusView(offline, parsed({ serving: DAEMON, targets: [daemonReady, local] }));
    expect(daemon.text).toBe("$(sparkle) Cove: daemon (offline)");
    expect(daemon.severity).toBe("ok");
    const lost = statusView(offline, parsed({ serving: LOCAL, targets: [daemonSkipped, local] }));
    expect(lost.text).toBe("$(warning) Cove: local (fell back, offline)");
    expect(lost.tooltip).toContain("Fell back: daemon skipped: the Cove daemon went away");
  });

  it("warns when a target of [routing] complete is passed over, with why in the tooltip", () => {
    const skipped = statusView(
      online,
      parsed({ serving: `${LOCAL} (passed over openai: cannot reach …)`, targets: [remoteSkipped, local] }),
    );
    expect(skipped.text).toBe("$(warning) Cove: local (fell back)");
    expect(skipped.severity).toBe("warning");
    expect(skipped.tooltip).toContain(`Fell back: openai skipped: ${remoteSkipped.reason}`);
    expect(skipped.refreshAfterMs).toBe(REFRESH_MS); // the server tries it again: so does the status bar
    const unset = statusView(offline, parsed({ serving: LOCAL, targets: [remoteUnset, local] }));
    expect(unset.text).toBe("$(warning) Cove: local (fell back, offline)");
    expect(unset.tooltip).toContain("Fell back: remote unavailable: no remote.base_url set");
  });

  it("refreshes soon while the model loads, and shows an error when nothing serves", () => {
    const loading = statusView(offline, parsed({ serving: "the local model (loading)", targets: [] }));
    expect(loading.text).toBe("$(loading~spin) Cove: loading (offline)");
    expect(loading.refreshAfterMs).toBe(LOADING_REFRESH_MS);
    const failed = statusView(online, parsed({ serving: "nothing", error: "the model file is missing", targets: [] }));
    expect(failed.text).toBe("$(error) Cove: no completions");
    expect(failed.severity).toBe("error");
    expect(failed.tooltip).toContain("Error: the model file is missing");
  });
});

describe("statusDetails", () => {
  it("lists each target with its state and reason, marks who serves, then the actions", () => {
    const details = statusDetails(online, parsed({ serving: LOCAL, targets: [remoteSkipped, remoteUnset, local] }));
    expect(details.slice(0, 3)).toEqual([
      { label: "$(warning) openai", description: REMOTE, detail: `skipped: ${remoteSkipped.reason}` },
      { label: "$(circle-slash) remote", description: "", detail: "unavailable: no remote.base_url set" },
      { label: "$(check) local", description: `serves completions: ${LOCAL}` },
    ]);
    expect(details.slice(3).map((detail) => detail.action)).toEqual(["log", "transcript", "restart"]);
  });

  it("says who serves when there is no chain, and what is missing otherwise", () => {
    expect(statusDetails(offline, parsed({ serving: LOCAL, targets: [] }))[0]).toEqual({
      label: `$(sparkle) ${LOCAL}`,
      description: "serves completions",
    });
    expect(statusDetails(offline, parsed({ serving: "nothing", error: "no model", targets: [] }))[0]).toEqual({
      label: "$(error) no completions",
      detail: "no model",
    });
    expect(statusDetails(offline, undefined)[0]?.label).toContain("has not said");
    expect(statusDetails({ phase: "failed", offline: true }, undefined)[0]?.label).toContain("the server is failed");
    expect(statusDetails({ phase: "failed", offline: true }, undefined)).toHaveLength(4);
  });
});

describe("parseAgentStatus", () => {
  it("reads whether the agent can run and what to set", () => {
    const reason = "the agent needs a chat model. To enable it, set [remote] base_url.";
    expect(parseAgentStatus({ agent: { fit: false, reason } })).toEqual({ fit: false, reason });
    expect(parseAgentStatus({ agent: { fit: true, reason: "" } })).toEqual({ fit: true, reason: "" });
  });

  it("gives undefined for a result of another shape (an older server)", () => {
    expect(parseAgentStatus({ completions: {} })).toBeUndefined();
    expect(parseAgentStatus({ agent: { fit: "yes", reason: "" } })).toBeUndefined();
    expect(parseAgentStatus(null)).toBeUndefined();
  });
});
