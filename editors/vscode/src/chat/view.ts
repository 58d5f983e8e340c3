/**
 * Cove's chat in the side bar: a webview view whose conversation is an Agent Client Protocol session with
 * `cove acp` (the npm SDK's client), like Zed's agent panel. The agent reads and edits VS Code's documents
 * (`fs/*`: unsaved buffers are what it sees; its edits land in the editor as one undoable step), asks permission in
 * the view (an edit opens its diff first), and streams its answer, tool calls and plan into the view.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import type * as Acp from "@agentclientprotocol/sdk" with { "resolution-mode": "import" };
import * as vscode from "vscode";

import { findExecutable } from "../executable";
import { applyUpdate, emptyState, mentions, proposedText, type ChatState, type Entry } from "./model";
import { chatPage } from "./page";

export const VIEW_ID = "cove.agentView";
/** The SDK is an ES module: loaded once, on first use (esbuild bundles it into the extension either way). */
let sdk: Promise<typeof Acp> | undefined;
const loadSdk = (): Promise<typeof Acp> => (sdk ??= import("@agentclientprotocol/sdk"));
const PROPOSAL_SCHEME = "cove-proposal";

type FromView =
  | { type: "ready" }
  | { type: "send"; text: string }
  | { type: "cancel" }
  | { type: "answer"; id: number; optionId: string }
  | { type: "mode"; id: string }
  | { type: "model"; value: string }
  | { type: "sessions" }
  | { type: "load"; sessionId: string }
  | { type: "new" }
  | { type: "diff"; entry: number; diff: number };

export class ChatView implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;
  private state: ChatState = emptyState();
  private connection: Acp.ClientConnection | undefined;
  private process: ChildProcess | undefined;
  private starting: Promise<Acp.ClientConnection | undefined> | undefined;
  private readonly waiting = new Map<number, (optionId: string) => void>();
  private readonly inputs = new Map<string, unknown>();
  private readonly proposals = new Map<string, string>();
  private permissions = 0;
  private pending: string | undefined;

  /** `launch()`: the cove executable, the workspace folder, and the editor's settings as environment variables. */
  constructor(
    private readonly command: () => { command: string; folder: string | undefined; env: Record<string, string> },
  ) {}

  register(context: vscode.ExtensionContext): void {
    context.subscriptions.push(
      vscode.window.registerWebviewViewProvider(VIEW_ID, this, { webviewOptions: { retainContextWhenHidden: true } }),
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, {
        provideTextDocumentContent: (uri) => this.proposals.get(uri.toString()) ?? "",
      }),
      { dispose: () => this.stop() },
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true };
    view.webview.html = chatPage(randomBytes(16).toString("hex"), view.webview.cspSource);
    view.webview.onDidReceiveMessage((message: FromView) => void this.received(message));
  }

  /** Open the view with `text` in its prompt box (the palette's Ask and Run an agent task, the light bulb). */
  async open(text: string): Promise<void> {
    this.pending = text;
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
    if (this.view !== undefined) {
      void this.view.webview.postMessage({ type: "prompt", text });
      this.pending = undefined;
    }
  }

  private async received(message: FromView): Promise<void> {
    switch (message.type) {
      case "ready":
        this.post();
        if (this.pending !== undefined) {
          void this.view?.webview.postMessage({ type: "prompt", text: this.pending });
          this.pending = undefined;
        }
        void this.connect();
        return;
      case "send":
        return this.send(message.text);
      case "cancel":
        if (this.state.running && this.state.sessionId !== undefined) {
          await this.connection?.agent.notify("session/cancel", { sessionId: this.state.sessionId });
        }
        return;
      case "answer":
        this.waiting.get(message.id)?.(message.optionId);
        return;
      case "mode":
        return this.choose(() =>
          this.connection?.agent.request("session/set_mode", {
            sessionId: this.state.sessionId ?? "",
            modeId: message.id,
          }),
          { mode: message.id },
        );
      case "model":
        return this.choose(() =>
          this.connection?.agent.request("session/set_config_option", {
            sessionId: this.state.sessionId ?? "",
            configId: "model",
            value: message.value,
          }),
          { model: message.value },
        );
      case "sessions":
        return this.listSessions();
      case "load":
        return this.loadSession(message.sessionId);
      case "new":
        this.state = { ...emptyState(), modes: this.state.modes, models: this.state.models };
        this.post();
        await this.newSession();
        return;
      case "diff": {
        const entry = this.state.entries[message.entry];
        const diff = entry?.kind === "tool" ? entry.diffs[message.diff] : undefined;
        if (diff !== undefined) {
          await this.showDiff(diff.path, diff.oldText, diff.newText, `${entry?.kind === "tool" ? entry.title : ""}`);
        }
        return;
      }
    }
  }

  private async choose(request: () => Promise<unknown> | undefined, change: Partial<ChatState>): Promise<void> {
    try {
      await request();
      this.update(change);
    } catch (err) {
      this.add({ kind: "error", text: String(err instanceof Error ? err.message : err) });
    }
  }

  /** The connection to `cove acp`, started (and initialized, with a session) on first need. */
  private connect(): Promise<Acp.ClientConnection | undefined> {
    if (this.connection !== undefined) {
      return Promise.resolve(this.connection);
    }
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async start(): Promise<Acp.ClientConnection | undefined> {
    const { command, folder, env } = this.command();
    if (findExecutable(command, process.env["PATH"] ?? "", folder ?? process.cwd()) === undefined) {
      const where = command.includes("/") ? "is not an executable file" : "is not on PATH";
      this.add({
        kind: "error",
        text: `Cove's agent did not start: \`${command}\` ${where}. Set cove.path to the cove executable.`,
      });
      return undefined;
    }
    const acp = await loadSdk();
    const child = spawn(command, ["acp"], {
      cwd: folder,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.process = child;
    const stream = acp.ndJsonStream(
      Writable.toWeb(child.stdin) as WritableStream<Uint8Array>,
      Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>,
    );
    const connection = this.app(acp).connect(stream);
    this.connection = connection;
    child.on("exit", (code, signal) => {
      if (this.process !== child) {
        return; // stopped on purpose
      }
      this.connection = undefined;
      this.process = undefined;
      this.waiting.forEach((answer) => answer("reject"));
      this.update({ running: false });
      this.add({ kind: "error", text: `Cove's agent stopped (${signal ?? `exit ${code}`}); it restarts with your next message.` });
    });
    try {
      await connection.agent.request("initialize", {
        protocolVersion: acp.PROTOCOL_VERSION,
        clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: false },
        clientInfo: { name: "cove-vscode", version: "0.1.0" },
      });
      await this.newSession(connection);
      return connection;
    } catch (err) {
      this.add({ kind: "error", text: `Cove's agent did not start: ${err instanceof Error ? err.message : err}` });
      return undefined;
    }
  }

  private app(acp: typeof Acp): Acp.ClientApp {
    return acp
      .client({ name: "cove-vscode" })
      .onNotification("session/update", ({ params }) => {
        const update = params.update as unknown as { sessionUpdate: string; toolCallId?: string; rawInput?: unknown };
        if (update.sessionUpdate === "tool_call" && update.toolCallId !== undefined) {
          this.inputs.set(update.toolCallId, update.rawInput);
        }
        this.state = applyUpdate(this.state, update);
        this.post();
      })
      .onRequest("session/request_permission", async ({ params }) => {
        const optionId = await this.askPermission(params.toolCall, params.options);
        return { outcome: { outcome: "selected", optionId } };
      })
      .onRequest("fs/read_text_file", async ({ params }) => {
        const document = await vscode.workspace.openTextDocument(vscode.Uri.file(params.path));
        let text = document.getText();
        if (params.line != null || params.limit != null) {
          const lines = text.split("\n");
          const from = Math.max((params.line ?? 1) - 1, 0);
          text = lines.slice(from, params.limit != null ? from + params.limit : undefined).join("\n");
        }
        return { content: text };
      })
      .onRequest("fs/write_text_file", async ({ params }) => {
        await this.writeDocument(params.path, params.content);
        return {};
      });
  }

  /** The agent's change of a file, in the editor: the whole text replaced in one edit (one step of VS Code's undo). */
  private async writeDocument(path: string, content: string): Promise<void> {
    const uri = vscode.Uri.file(path);
    let document: vscode.TextDocument;
    try {
      document = await vscode.workspace.openTextDocument(uri);
    } catch {
      await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(content)); // a new file
      return;
    }
    if (document.getText() === content) {
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)), content);
    await vscode.workspace.applyEdit(edit);
  }

  private async askPermission(
    toolCall: { toolCallId: string; title?: string | null },
    options: { optionId: string; name: string; kind: string }[],
  ): Promise<string> {
    const id = ++this.permissions;
    const tool = this.state.entries.find((e): e is Extract<Entry, { kind: "tool" }> => e.kind === "tool" && e.id === toolCall.toolCallId);
    const title = toolCall.title ?? tool?.title ?? "The agent asks";
    const path = tool?.path;
    if (path !== undefined) {
      const current = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === path)?.getText()
        ?? (await vscode.workspace.openTextDocument(vscode.Uri.file(path)).then((d) => d.getText(), () => undefined));
      const proposed = proposedText(this.inputs.get(toolCall.toolCallId), current);
      if (proposed !== undefined) {
        await this.showDiff(path, current ?? "", proposed, `Proposed: ${title}`);
      }
    }
    this.add({ kind: "permission", id, title, options, ...(path !== undefined ? { path } : {}) });
    const optionId = await new Promise<string>((resolve) => this.waiting.set(id, resolve));
    this.waiting.delete(id);
    const chosen = options.find((o) => o.optionId === optionId)?.name ?? optionId;
    this.state = {
      ...this.state,
      entries: this.state.entries.map((e) => (e.kind === "permission" && e.id === id ? { ...e, answered: chosen } : e)),
    };
    this.post();
    return optionId;
  }

  private async showDiff(path: string, before: string, after: string, title: string): Promise<void> {
    const name = path.split("/").pop() ?? path;
    const left = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/before/${name}`, query: String(Date.now()) });
    const right = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/after/${name}`, query: String(Date.now()) });
    this.proposals.set(left.toString(), before);
    this.proposals.set(right.toString(), after);
    await vscode.commands.executeCommand("vscode.diff", left, right, `${title} (${name})`, { preview: true, preserveFocus: true });
  }

  private async newSession(connection = this.connection): Promise<void> {
    const folder = this.command().folder;
    if (connection === undefined || folder === undefined) {
      return;
    }
    const session = await connection.agent.request("session/new", { cwd: folder, mcpServers: [] });
    this.sessionChoices(session.sessionId, session);
  }

  private sessionChoices(sessionId: string, answer: { modes?: unknown; configOptions?: unknown }): void {
    const modes = answer.modes as { currentModeId: string; availableModes: { id: string; name: string }[] } | null;
    const model = (answer.configOptions as { id: string; currentValue: string; options: { value: string; name: string }[] }[] | null)?.find(
      (o) => o.id === "model",
    );
    this.update({
      sessionId,
      modes: modes?.availableModes.map((m) => ({ id: m.id, name: m.name })) ?? [],
      mode: modes?.currentModeId ?? "",
      models: model?.options.map((o) => ({ value: o.value, name: o.name })) ?? [],
      model: model?.currentValue ?? "",
    });
  }

  private async listSessions(): Promise<void> {
    const connection = await this.connect();
    const folder = this.command().folder;
    if (connection === undefined) {
      return;
    }
    const listed = await connection.agent.request("session/list", folder ? { cwd: folder } : {});
    const others = listed.sessions.filter((session) => session.sessionId !== this.state.sessionId);
    void this.view?.webview.postMessage({ type: "sessions", sessions: others });
  }

  private async loadSession(sessionId: string): Promise<void> {
    const connection = await this.connect();
    const folder = this.command().folder;
    if (connection === undefined || folder === undefined) {
      return;
    }
    this.state = { ...emptyState(), sessionId };
    this.post();
    const loaded = await connection.agent.request("session/load", { cwd: folder, sessionId, mcpServers: [] });
    this.sessionChoices(sessionId, loaded ?? {});
  }

  private async send(text: string): Promise<void> {
    const connection = await this.connect();
    if (connection === undefined || this.state.sessionId === undefined) {
      return;
    }
    const prompt: Acp.ContentBlock[] = [{ type: "text", text }];
    const folder = this.command().folder;
    for (const mention of folder !== undefined ? mentions(text) : []) {
      const uri = vscode.Uri.joinPath(vscode.Uri.file(folder as string), mention);
      try {
        const document = await vscode.workspace.openTextDocument(uri);
        prompt.push({ type: "resource", resource: { uri: uri.toString(), text: document.getText() } });
      } catch {
        // not a file here: the mention stays text
      }
    }
    this.state = { ...this.state, running: true, entries: [...this.state.entries, { kind: "user", text }] };
    this.post();
    try {
      const done: Acp.PromptResponse = await connection.agent.request("session/prompt", {
        sessionId: this.state.sessionId,
        prompt,
      });
      if (done.stopReason === "cancelled") {
        this.add({ kind: "thought", text: "(cancelled)" });
      }
    } catch (err) {
      this.add({ kind: "error", text: err instanceof Error ? err.message : String(err) });
    } finally {
      this.update({ running: false });
    }
  }

  private add(entry: Entry): void {
    this.state = { ...this.state, entries: [...this.state.entries, entry] };
    this.post();
  }

  private update(change: Partial<ChatState>): void {
    this.state = { ...this.state, ...change };
    this.post();
  }

  private post(): void {
    void this.view?.webview.postMessage({ type: "state", state: this.state });
  }

  private stop(): void {
    const child = this.process;
    this.process = undefined;
    this.connection?.close();
    this.connection = undefined;
    child?.kill();
  }
}
