/**
 * Pure helpers of the extension (no `vscode` import, so vitest runs them directly): the mapping from the
 * extension's flat settings to the server's `initializationOptions`, the status bar text, and the messages
 * that report a command's result.
 */

/** A setting value as VS Code's configuration API returns it. */
export type SettingValue = string | number | boolean | null | undefined;

/** The extension's settings under `cove.`, keyed as VS Code names them: `completion.maxTokens`, `path`... */
export type FlatSettings = Readonly<Record<string, SettingValue>>;

/** The server's settings: `{"cove": {section: {snake_case_key: value}}}`. */
export interface CoveOptions {
  cove: Record<string, Record<string, string | number | boolean>>;
}

/** The settings that go to the server (`cove.path` only tells the extension how to start it). */
export const SERVER_SETTINGS = [
  "completion.maxTokens",
  "completion.multiline",
  "remote.baseUrl",
  "remote.model",
  "remote.offline",
  "agent.mode",
] as const;

/** `maxTokens` -> `max_tokens`, `baseUrl` -> `base_url`. */
export function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * The server's `initializationOptions` (and `didChangeConfiguration` settings) for flat extension settings.
 *
 * Keys without a section (`path`) are the extension's own; empty strings, `null` and `undefined` are left
 * out so that the server keeps what Cove's own config files say.
 */
export function toInitializationOptions(flat: FlatSettings): CoveOptions {
  const cove: CoveOptions["cove"] = {};
  for (const [name, value] of Object.entries(flat)) {
    const dot = name.indexOf(".");
    if (dot <= 0 || dot === name.length - 1) {
      continue;
    }
    if (value === undefined || value === null || (typeof value === "string" && value.trim() === "")) {
      continue;
    }
    const section = snakeCase(name.slice(0, dot));
    const key = snakeCase(name.slice(dot + 1));
    cove[section] = { ...(cove[section] ?? {}), [key]: typeof value === "string" ? value.trim() : value };
  }
  return { cove };
}

/** What `WorkspaceConfiguration.inspect` reports about one setting (only the fields used here). */
export interface InspectedSetting {
  defaultValue?: SettingValue;
  globalValue?: SettingValue;
  workspaceValue?: SettingValue;
  workspaceFolderValue?: SettingValue;
}

/**
 * The value the user set, most specific scope first, or `undefined` where only the default applies.
 *
 * Defaults are not sent: Cove's config files (`~/.config/cove/config.toml`, the project's `.cove.toml`) then
 * decide, and the editor only overrides what the user changed in it.
 */
export function explicitValue(inspected: InspectedSetting | undefined): SettingValue {
  if (inspected === undefined) {
    return undefined;
  }
  return inspected.workspaceFolderValue ?? inspected.workspaceValue ?? inspected.globalValue;
}

/** Where the server is in its life, as the status bar shows it. */
export type ServerPhase = "starting" | "ready" | "stopped" | "failed";

export interface StatusState {
  phase: ServerPhase;
  /** `cove.remote.offline` as the user has it. */
  offline: boolean;
  /** `cove.remote.baseUrl` as the user has it. */
  baseUrl?: string | undefined;
}

/** True when only the local model (or loopback servers) will be asked. */
export function isOffline(state: Pick<StatusState, "offline" | "baseUrl">): boolean {
  return state.offline || state.baseUrl === undefined || state.baseUrl.trim() === "";
}

/** The status bar text: `Cove: starting`, `Cove: ready (offline)`... */
export function statusText(state: StatusState): string {
  const suffix = isOffline(state) ? " (offline)" : "";
  return `Cove: ${state.phase}${suffix}`;
}

/** A palette command's server result as a one-line message; `undefined` where the server already showed it. */
export function resultMessage(command: string, result: unknown): string | undefined {
  const fields: Record<string, unknown> = typeof result === "object" && result !== null ? { ...result } : {};
  switch (command) {
    case "cove.ask":
    case "cove.agent": {
      // The server opens the answer as a markdown document; say something only when there is none.
      const answer = typeof fields["answer"] === "string" ? fields["answer"] : "";
      const stopped = typeof fields["stopped"] === "string" ? fields["stopped"] : "unknown";
      return answer.trim() === "" ? `Cove: the run ended (${stopped}) without an answer` : undefined;
    }
    case "cove.approvePlan":
    case "cove.rejectPlan":
      return `Cove: ${String(fields["result"] ?? "no answer")}`;
    case "cove.cancel": {
      const count = typeof fields["cancelled"] === "number" ? fields["cancelled"] : 0;
      return count === 0 ? "Cove: no agent run to cancel" : `Cove: cancelled ${count} run${count === 1 ? "" : "s"}`;
    }
    case "cove.undo":
      return `Cove: ${String(fields["text"] ?? "nothing to undo")}`;
    default:
      return undefined;
  }
}

/**
 * The same settings as `COVE_<SECTION>_<KEY>` environment variables, for a Cove process that reads no LSP options
 * (`cove acp`, which the chat view starts): the editor's settings reach the agent there too.
 */
export function toEnvironment(options: CoveOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [section, values] of Object.entries(options.cove)) {
    for (const [key, value] of Object.entries(values)) {
      env[`COVE_${section}_${key}`.toUpperCase()] = String(value);
    }
  }
  return env;
}
