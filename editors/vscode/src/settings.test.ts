import { describe, expect, it } from "vitest";

import {
  SERVER_SETTINGS,
  explicitValue,
  isOffline,
  resultMessage,
  snakeCase,
  statusText,
  toEnvironment,
  toInitializationOptions,
} from "./settings";

describe("snakeCase", () => {
  it("turns camelCase into snake_case", () => {
    expect(snakeCase("maxTokens")).toBe("max_tokens");
    expect(snakeCase("baseUrl")).toBe("base_url");
    expect(snakeCase("model")).toBe("model");
    expect(snakeCase("apiKeyEnv")).toBe("api_key_env");
  });
});

describe("toInitializationOptions", () => {
  it("maps every server setting to the server's sections and snake_case keys", () => {
    const options = toInitializationOptions({
      path: "/opt/cove/bin/cove",
      "completion.maxTokens": 24,
      "completion.multiline": "auto",
      "remote.baseUrl": "http://127.0.0.1:11434/v1",
      "remote.model": "qwen",
      "remote.offline": true,
      "agent.mode": "auto-read",
    });
    expect(options).toEqual({
      cove: {
        completion: { max_tokens: 24, multiline: "auto" },
        remote: { base_url: "http://127.0.0.1:11434/v1", model: "qwen", offline: true },
        agent: { mode: "auto-read" },
      },
    });
  });

  it("leaves out empty strings, null and undefined, and keeps false and 0", () => {
    const options = toInitializationOptions({
      "remote.baseUrl": "",
      "remote.model": "   ",
      "remote.offline": false,
      "completion.maxTokens": 0,
      "completion.multiline": undefined,
      "agent.mode": null,
    });
    expect(options).toEqual({ cove: { remote: { offline: false }, completion: { max_tokens: 0 } } });
  });

  it("gives an empty cove object for no settings, and ignores the extension's own ones", () => {
    expect(toInitializationOptions({})).toEqual({ cove: {} });
    expect(toInitializationOptions({ path: "cove", ".odd": 1, "odd.": 2 })).toEqual({ cove: {} });
  });

  it("trims strings", () => {
    expect(toInitializationOptions({ "remote.model": " qwen " })).toEqual({ cove: { remote: { model: "qwen" } } });
  });

  it("covers every setting package.json contributes", async () => {
    const { readFile } = await import("node:fs/promises");
    const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as {
      contributes: { configuration: { properties: Record<string, unknown> } };
    };
    const contributed = Object.keys(manifest.contributes.configuration.properties)
      .map((name) => name.replace(/^cove\./, ""))
      .filter((name) => name !== "path");
    expect([...SERVER_SETTINGS].sort()).toEqual(contributed.sort());
  });
});

describe("explicitValue", () => {
  it("prefers the most specific scope and ignores the default", () => {
    expect(explicitValue(undefined)).toBeUndefined();
    expect(explicitValue({ defaultValue: 24 })).toBeUndefined();
    expect(explicitValue({ defaultValue: 24, globalValue: 32 })).toBe(32);
    expect(explicitValue({ globalValue: 32, workspaceValue: 16 })).toBe(16);
    expect(explicitValue({ globalValue: 32, workspaceValue: 16, workspaceFolderValue: 8 })).toBe(8);
    expect(explicitValue({ globalValue: true, workspaceValue: false })).toBe(false);
  });
});

describe("statusText", () => {
  it("shows the phase", () => {
    expect(statusText({ phase: "starting", offline: false, baseUrl: "http://gpu:8000/v1" })).toBe("Cove: starting");
    expect(statusText({ phase: "ready", offline: false, baseUrl: "http://gpu:8000/v1" })).toBe("Cove: ready");
    expect(statusText({ phase: "failed", offline: false, baseUrl: "http://gpu:8000/v1" })).toBe("Cove: failed");
  });

  it("says offline when remote.offline is on or no remote server is set", () => {
    expect(statusText({ phase: "ready", offline: true, baseUrl: "http://127.0.0.1:11434/v1" })).toBe(
      "Cove: ready (offline)",
    );
    expect(statusText({ phase: "ready", offline: false, baseUrl: "" })).toBe("Cove: ready (offline)");
    expect(statusText({ phase: "starting", offline: false })).toBe("Cove: starting (offline)");
    expect(isOffline({ offline: false, baseUrl: " " })).toBe(true);
  });
});

describe("resultMessage", () => {
  it("stays quiet where the server shows the answer, and reports a run without one", () => {
    expect(resultMessage("cove.ask", { answer: "It adds.", stopped: "answered" })).toBeUndefined();
    expect(resultMessage("cove.agent", { answer: "", stopped: "max_steps" })).toBe(
      "Cove: the run ended (max_steps) without an answer",
    );
    expect(resultMessage("cove.transcript", { text: "..." })).toBeUndefined();
  });

  it("reports plans, cancels and undo", () => {
    expect(resultMessage("cove.approvePlan", { result: "approved" })).toBe("Cove: approved");
    expect(resultMessage("cove.rejectPlan", { result: "no plan is waiting for a decision" })).toBe(
      "Cove: no plan is waiting for a decision",
    );
    expect(resultMessage("cove.cancel", { cancelled: 0 })).toBe("Cove: no agent run to cancel");
    expect(resultMessage("cove.cancel", { cancelled: 1 })).toBe("Cove: cancelled 1 run");
    expect(resultMessage("cove.cancel", { cancelled: 2 })).toBe("Cove: cancelled 2 runs");
    expect(resultMessage("cove.undo", { text: "restored checkpoint 1 (before step 2, edit_file): M add.py" })).toBe(
      "Cove: restored checkpoint 1 (before step 2, edit_file): M add.py",
    );
    expect(resultMessage("cove.undo", null)).toBe("Cove: nothing to undo");
  });
});

describe("settings as environment variables for cove acp", () => {
  it("names each COVE_SECTION_KEY", () => {
    const options = toInitializationOptions({ "remote.baseUrl": "http://127.0.0.1:8080/v1", "agent.mode": "ask", "remote.offline": false });
    expect(toEnvironment(options)).toEqual({
      COVE_REMOTE_BASE_URL: "http://127.0.0.1:8080/v1",
      COVE_AGENT_MODE: "ask",
      COVE_REMOTE_OFFLINE: "false",
    });
  });
});
