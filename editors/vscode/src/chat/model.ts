/**
 * The chat view's state and what moves it, pure (no `vscode`, so vitest runs it): the ACP updates `cove acp` sends
 * folded into a conversation of entries, and what an edit that asks permission would make of a file.
 */

/** One thing shown in the conversation, in order. */
export type Entry =
  | { kind: "user"; text: string }
  | { kind: "agent"; text: string }
  | { kind: "thought"; text: string }
  | {
      kind: "tool";
      id: string;
      title: string;
      toolKind: string;
      status: string;
      path?: string;
      output: string;
      diffs: Diff[];
    }
  | { kind: "permission"; id: number; title: string; options: Option[]; answered?: string; path?: string }
  | { kind: "error"; text: string };

export type Diff = { path: string; oldText: string; newText: string };
export type Option = { optionId: string; name: string; kind: string };
export type PlanItem = { content: string; status: string };
export type Command = { name: string; description: string };

/** What the view shows: the conversation, the plan, the choices, whether a turn is running. */
export type ChatState = {
  entries: Entry[];
  plan: PlanItem[];
  commands: Command[];
  modes: { id: string; name: string }[];
  mode: string;
  models: { value: string; name: string }[];
  model: string;
  running: boolean;
  sessionId?: string;
};

export function emptyState(): ChatState {
  return { entries: [], plan: [], commands: [], modes: [], mode: "", models: [], model: "", running: false };
}

type Update = { sessionUpdate: string; [key: string]: unknown };

/** The state after one `session/update`. */
export function applyUpdate(state: ChatState, update: Update): ChatState {
  const entries = state.entries;
  switch (update.sessionUpdate) {
    case "agent_message_chunk":
    case "agent_thought_chunk":
    case "user_message_chunk": {
      const kind = update.sessionUpdate === "agent_message_chunk" ? "agent" : update.sessionUpdate === "user_message_chunk" ? "user" : "thought";
      const text = textOf(update["content"]);
      const last = entries[entries.length - 1];
      if (last !== undefined && last.kind === kind) {
        return { ...state, entries: [...entries.slice(0, -1), { ...last, text: last.text + text }] };
      }
      return { ...state, entries: [...entries, { kind, text }] };
    }
    case "tool_call": {
      const locations = update["locations"] as { path: string }[] | undefined;
      const entry: Entry = {
        kind: "tool",
        id: String(update["toolCallId"]),
        title: String(update["title"] ?? ""),
        toolKind: String(update["kind"] ?? "other"),
        status: String(update["status"] ?? "pending"),
        output: "",
        diffs: [],
        ...(locations?.[0] ? { path: locations[0].path } : {}),
      };
      return { ...state, entries: [...entries, entry] };
    }
    case "tool_call_update": {
      const id = String(update["toolCallId"]);
      return {
        ...state,
        entries: entries.map((entry) => {
          if (entry.kind !== "tool" || entry.id !== id) {
            return entry;
          }
          const content = (update["content"] as { type: string; [k: string]: unknown }[] | undefined) ?? undefined;
          const diffs = content?.filter((c) => c.type === "diff").map((c) => ({
            path: String(c["path"]),
            oldText: String(c["oldText"] ?? ""),
            newText: String(c["newText"] ?? ""),
          }));
          const texts = content?.filter((c) => c.type === "content").map((c) => textOf(c["content"]));
          return {
            ...entry,
            status: String(update["status"] ?? entry.status),
            ...(texts !== undefined && texts.length > 0 ? { output: texts.join("\n") } : {}),
            ...(diffs !== undefined && diffs.length > 0 ? { diffs } : {}),
          };
        }),
      };
    }
    case "plan":
      return { ...state, plan: (update["entries"] as PlanItem[]).map((e) => ({ content: e.content, status: e.status })) };
    case "available_commands_update":
      return {
        ...state,
        commands: (update["availableCommands"] as Command[]).map((c) => ({ name: c.name, description: c.description })),
      };
    case "current_mode_update":
      return { ...state, mode: String(update["currentModeId"]) };
    default:
      return state;
  }
}

function textOf(content: unknown): string {
  const block = content as { type?: string; text?: string } | undefined;
  return block?.type === "text" ? block.text ?? "" : "";
}

/**
 * What an edit that asks permission would make of the file's text now (`current`, the editor's buffer), from the
 * call's input: `edit_file` replaces `old_text` once, `write_file` gives the whole `content`; undefined when the
 * input says neither or the text to replace is not there.
 */
export function proposedText(rawInput: unknown, current: string | undefined): string | undefined {
  const input = rawInput as { old_text?: unknown; new_text?: unknown; content?: unknown } | undefined;
  if (typeof input?.content === "string") {
    return input.content;
  }
  if (typeof input?.old_text === "string" && typeof input.new_text === "string" && current !== undefined) {
    const at = current.indexOf(input.old_text);
    return at < 0 ? undefined : current.slice(0, at) + input.new_text + current.slice(at + input.old_text.length);
  }
  return undefined;
}

/** The prompt's text split into what is typed and the `@file` mentions in it (paths relative to the workspace). */
export function mentions(text: string): string[] {
  return [...text.matchAll(/(?:^|\s)@([\w./-]+)/g)].map((match) => match[1] as string);
}
