/**
 * The status bar item, pure (no `vscode` import, so vitest runs it directly): the server's `cove.status` result
 * read once at the edge, and what the item shows for it (text, tooltip, severity, when to ask again) and what a
 * click lists.
 */

import { isOffline, statusText, type StatusState } from "./settings";

/** One target of `[routing] complete`, as `cove.status` reports it. */
export interface CompletionTarget {
  /** The backend's name: `local`, `openai`, or the routing name (`remote`) of one that could not be built. */
  name: string;
  /** What it is, e.g. "qwen at http://127.0.0.1:8080/v1 (OpenAI-compatible /completions)"; may be empty. */
  description: string;
  /** `ready`: asked in turn; `skipped`: failed lately, passed over for a while; `unavailable`: not configured. */
  state: "ready" | "skipped" | "unavailable";
  /** Why it is skipped or unavailable; empty when ready. */
  reason: string;
}

/** Who serves completions: the `completions` part of the `cove.status` result. */
export interface CompletionStatus {
  /** The server's one-line description of the backend serving now. */
  serving: string;
  /** The targets of `[routing] complete` in order (empty when the local model serves alone). */
  targets: CompletionTarget[];
  /** Why nothing serves (the model failed to load), when that is so. */
  error?: string;
  /** The local model this project asks for (its file) and the setting (file or layer) that chose it. */
  model?: { path: string; chosenBy: string };
}

/** The part of `cove.status` the status bar shows, or `undefined` when the result does not have its shape. */
export function parseCompletionStatus(result: unknown): CompletionStatus | undefined {
  const completions = field(result, "completions");
  const serving = field(completions, "serving");
  const targets = field(completions, "targets");
  if (typeof serving !== "string" || !Array.isArray(targets)) {
    return undefined;
  }
  const parsed: CompletionStatus = { serving, targets: targets.flatMap(parseTarget) };
  const error = field(completions, "error");
  if (typeof error === "string") {
    parsed.error = error;
  }
  const model = field(completions, "model");
  const path = field(model, "path");
  const chosenBy = field(model, "chosen_by");
  if (typeof path === "string" && typeof chosenBy === "string") {
    parsed.model = { path, chosenBy };
  }
  return parsed;
}

/** Whether the agent can run with the server's settings, from `cove.status` (`reason`: what to set when not). */
export interface AgentStatus {
  fit: boolean;
  reason: string;
}

/** The `agent` part of `cove.status`, or `undefined` when the result does not have its shape. */
export function parseAgentStatus(result: unknown): AgentStatus | undefined {
  const agent = field(result, "agent");
  const fit = field(agent, "fit");
  const reason = field(agent, "reason");
  return typeof fit === "boolean" && typeof reason === "string" ? { fit, reason } : undefined;
}

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function parseTarget(value: unknown): CompletionTarget[] {
  const name = field(value, "name");
  const state = field(value, "state");
  if (typeof name !== "string" || (state !== "ready" && state !== "skipped" && state !== "unavailable")) {
    return [];
  }
  const description = field(value, "description");
  const reason = field(value, "reason");
  return [
    {
      name,
      state,
      description: typeof description === "string" ? description : "",
      reason: typeof reason === "string" ? reason : "",
    },
  ];
}

/** Which kind of backend answers the next completion. */
export type Backend = "local" | "daemon" | "remote" | "loading" | "none";

/** The backend of a status: the first ready target (the chain ends at the local model), else the local model.
 * "daemon" is the model the Cove daemon holds for every window (on this machine, like "local"). */
export function servingBackend(status: CompletionStatus): Backend {
  if (status.error !== undefined) {
    return "none";
  }
  const first = status.targets.find((target) => target.state === "ready");
  if (first !== undefined) {
    return first.name === "local" || first.name === "daemon" ? first.name : "remote";
  }
  // The server says "the local model (loading)" until the model is in memory; the targets come with it.
  return status.targets.length === 0 && status.serving.includes("(loading)") ? "loading" : "local";
}

/** Targets passed over: skipped after failures (a circuit breaker tries them again) or not configured. */
export function passedOver(status: CompletionStatus): CompletionTarget[] {
  return status.targets.filter((target) => target.state !== "ready");
}

export type Severity = "ok" | "warning" | "error";

/** What the status bar item shows. */
export interface StatusView {
  text: string;
  tooltip: string;
  severity: Severity;
  /** When to ask the server again: soon while the model loads, else every half minute. */
  refreshAfterMs: number;
}

/** How often the item asks the server while the window has focus (a skipped server can recover meanwhile). */
export const REFRESH_MS = 30_000;
/** How often it asks while the model is still loading. */
export const LOADING_REFRESH_MS = 2_000;

const ICONS: Record<Backend, string> = {
  local: "$(sparkle)",
  daemon: "$(sparkle)",
  remote: "$(sparkle)",
  loading: "$(loading~spin)",
  none: "$(error)",
};

/**
 * The item for the server's phase and, once it answered `cove.status`, who serves completions:
 * `$(sparkle) Cove: local (offline)`, `$(sparkle) Cove: remote`, `$(warning) Cove: local (fell back)`...
 */
export function statusView(state: StatusState, completions: CompletionStatus | undefined): StatusView {
  if (state.phase !== "ready" || completions === undefined) {
    return {
      text: statusText(state),
      tooltip: `Cove: the server is ${state.phase}. Click for details.`,
      severity: state.phase === "failed" ? "error" : "ok",
      refreshAfterMs: state.phase === "ready" ? LOADING_REFRESH_MS : REFRESH_MS,
    };
  }
  const backend = servingBackend(completions);
  const skipped = passedOver(completions);
  const flags = [
    ...(skipped.length > 0 && backend !== "none" ? ["fell back"] : []),
    ...(isOffline(state) ? ["offline"] : []),
  ];
  const icon = skipped.length > 0 && backend !== "none" ? "$(warning)" : ICONS[backend];
  const name = backend === "none" ? "no completions" : backend;
  const lines = [`Completions: ${completions.serving}`];
  if (completions.model !== undefined) {
    lines.push(`Model: ${completions.model.path} (set by ${completions.model.chosenBy})`);
  }
  if (completions.error !== undefined) {
    lines.push(`Error: ${completions.error}`);
  }
  for (const target of skipped) {
    lines.push(`Fell back: ${target.name} ${target.state}: ${target.reason}`);
  }
  if (isOffline(state)) {
    lines.push("Offline: only the local model and servers on loopback are asked.");
  }
  lines.push("Click for details.");
  return {
    text: `${icon} Cove: ${name}${flags.length > 0 ? ` (${flags.join(", ")})` : ""}`,
    tooltip: lines.join("\n"),
    severity: backend === "none" ? "error" : skipped.length > 0 ? "warning" : "ok",
    refreshAfterMs: backend === "loading" ? LOADING_REFRESH_MS : REFRESH_MS,
  };
}

/** What a click on the item offers besides the details. */
export type StatusAction = "log" | "transcript" | "restart";

/** One line of the details a click shows (a quick pick item); `action` is what choosing it does. */
export interface StatusDetail {
  label: string;
  description?: string;
  detail?: string;
  action?: StatusAction;
}

const TARGET_ICONS: Record<CompletionTarget["state"], string> = {
  ready: "$(check)",
  skipped: "$(warning)",
  unavailable: "$(circle-slash)",
};

/** The details behind the item: one line per routing target (or who serves), then what can be done. */
export function statusDetails(state: StatusState, completions: CompletionStatus | undefined): StatusDetail[] {
  const details: StatusDetail[] = [];
  if (state.phase !== "ready") {
    details.push({ label: `$(circle-slash) Cove: the server is ${state.phase}` });
  } else if (completions === undefined) {
    details.push({ label: "$(question) Cove: the server has not said who serves completions yet" });
  } else if (completions.targets.length === 0) {
    details.push(
      completions.error === undefined
        ? { label: `${ICONS[servingBackend(completions)]} ${completions.serving}`, description: "serves completions" }
        : { label: "$(error) no completions", detail: completions.error },
    );
  } else {
    const serving = completions.targets.find((target) => target.state === "ready");
    for (const target of completions.targets) {
      const detail: StatusDetail = {
        label: `${TARGET_ICONS[target.state]} ${target.name}`,
        description: target === serving ? `serves completions: ${target.description}` : target.description,
      };
      if (target.state !== "ready") {
        detail.detail = `${target.state}: ${target.reason}`;
      }
      details.push(detail);
    }
  }
  details.push(
    { label: "$(output) Show the server's log", action: "log" },
    { label: "$(history) Show transcript", action: "transcript" },
    { label: "$(debug-restart) Restart server", action: "restart" },
  );
  return details;
}
