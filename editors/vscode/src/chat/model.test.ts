import { describe, expect, it } from "vitest";

import { applyUpdate, emptyState, mentions, proposedText } from "./model";

describe("the conversation from ACP updates", () => {
  it("joins streamed chunks into one entry per speaker", () => {
    let state = emptyState();
    for (const text of ["Hello", ", world"]) {
      state = applyUpdate(state, { sessionUpdate: "agent_message_chunk", content: { type: "text", text } });
    }
    state = applyUpdate(state, { sessionUpdate: "agent_thought_chunk", content: { type: "text", text: "[route]" } });
    state = applyUpdate(state, { sessionUpdate: "agent_message_chunk", content: { type: "text", text: "Again" } });
    expect(state.entries).toEqual([
      { kind: "agent", text: "Hello, world" },
      { kind: "thought", text: "[route]" },
      { kind: "agent", text: "Again" },
    ]);
  });

  it("follows a tool call from pending to its output and diff", () => {
    let state = applyUpdate(emptyState(), {
      sessionUpdate: "tool_call",
      toolCallId: "call-1",
      title: "edit_file a.py",
      kind: "edit",
      status: "pending",
      locations: [{ path: "/w/a.py" }],
    });
    state = applyUpdate(state, {
      sessionUpdate: "tool_call_update",
      toolCallId: "call-1",
      status: "completed",
      content: [{ type: "diff", path: "/w/a.py", oldText: "x = 1\n", newText: "x = 2\n" }],
    });
    expect(state.entries).toEqual([
      {
        kind: "tool",
        id: "call-1",
        title: "edit_file a.py",
        toolKind: "edit",
        status: "completed",
        path: "/w/a.py",
        output: "",
        diffs: [{ path: "/w/a.py", oldText: "x = 1\n", newText: "x = 2\n" }],
      },
    ]);
  });

  it("keeps the plan, the commands and the mode", () => {
    let state = applyUpdate(emptyState(), {
      sessionUpdate: "plan",
      entries: [{ content: "Fix it", status: "in_progress", priority: "medium" }],
    });
    state = applyUpdate(state, {
      sessionUpdate: "available_commands_update",
      availableCommands: [{ name: "undo", description: "Undo" }],
    });
    state = applyUpdate(state, { sessionUpdate: "current_mode_update", currentModeId: "ask" });
    expect([state.plan, state.commands, state.mode]).toEqual([
      [{ content: "Fix it", status: "in_progress" }],
      [{ name: "undo", description: "Undo" }],
      "ask",
    ]);
  });
});

describe("what an edit would make of the buffer", () => {
  it("replaces old_text once in the current text, or takes a whole new content", () => {
    expect(proposedText({ path: "a.py", old_text: "a - b", new_text: "a + b" }, "return a - b  # unsaved\n")).toBe(
      "return a + b  # unsaved\n",
    );
    expect(proposedText({ path: "a.py", content: "new\n" }, "old\n")).toBe("new\n");
    expect(proposedText({ path: "a.py", old_text: "missing", new_text: "x" }, "text")).toBeUndefined();
    expect(proposedText({ command: "ls" }, "text")).toBeUndefined();
  });
});

describe("mentions", () => {
  it("finds @paths in a prompt", () => {
    expect(mentions("Explain @src/calc.py and @README.md please, mail me@example")).toEqual([
      "src/calc.py",
      "README.md",
    ]);
  });
});
