/**
 * Cove for VS Code: starts `cove lsp` and lets vscode-languageclient do the protocol.
 *
 * The client already covers inline completions (ghost text), code actions and their resolve, the server's
 * commands (`cove.apply`, `cove.show`, `cove.accepted`... become VS Code commands), `$/progress`,
 * `window/showMessageRequest`, `window/showDocument` and `workspace/applyEdit`. This file adds the palette
 * commands (under `cove.palette.*`, because the client registers the server's own `cove.*` ids), the status
 * bar item (who serves completions, from `cove.status`), the settings the server gets, `cove/cursor`: where
 * the cursor settles, so the server can prefill there while the user is idle, and `cove/diagnostics`: the problems
 * VS Code shows, so that an agent run hears of the errors it made (saves go as LSP's own didSave).
 */

import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  LanguageClient,
  NotificationType,
  State,
  type LanguageClientOptions,
  type ServerOptions,
  type TextDocumentPositionParams,
} from "vscode-languageclient/node";

import {
  CURSOR_DEBOUNCE_MS,
  CURSOR_METHOD,
  Debounced,
  readyFor,
  selectedLines,
  SUGGESTION_READY_METHOD,
  YANKED_METHOD,
} from "./cursor";
import { BatchedChanges, DIAGNOSTICS_DEBOUNCE_MS, DIAGNOSTICS_METHOD } from "./diagnostics";
import {
  SERVER_SETTINGS,
  explicitValue,
  resultMessage,
  toEnvironment,
  toInitializationOptions,
  type CoveOptions,
  type FlatSettings,
  type ServerPhase,
  type SettingValue,
  type StatusState,
} from "./settings";
import { ChatView } from "./chat/view";
import { findExecutable } from "./executable";
import { RestartPolicy, serverGone } from "./restarts";
import {
  parseAgentStatus,
  parseCompletionStatus,
  servingBackend,
  statusDetails,
  statusView,
  type CompletionStatus,
} from "./status";

const SECTION = "cove";
const CURSOR = new NotificationType<TextDocumentPositionParams>(CURSOR_METHOD);
const YANKED = new NotificationType<{ textDocument: { uri: string }; range: ReturnType<typeof selectedLines> }>(
  YANKED_METHOD,
);
const DIAGNOSTICS = new NotificationType<{ textDocument: { uri: string }; diagnostics: unknown[] }>(
  DIAGNOSTICS_METHOD,
);
/** After a settings change the server applies them in its model thread: ask who serves a moment later. */
const AFTER_CONFIGURATION_MS = 1_000;

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem | undefined;
let phase: ServerPhase = "starting";
/** The server's last `cove.status` answer about completions (cleared when the server stops). */
let completions: CompletionStatus | undefined;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
/** Counts status requests, so that an answer overtaken by a newer request (or a restart) is dropped. */
let statusRequests = 0;
const cursorMoves = new Debounced<vscode.TextEditor>(CURSOR_DEBOUNCE_MS, sendCursor);
const restarts = new RestartPolicy();
const problemChanges = new BatchedChanges(DIAGNOSTICS_DEBOUNCE_MS, (uri) => void sendDiagnostics(uri));

/** The settings the user changed (defaults are left to Cove's own config files), mapped for the server. */
function serverOptions(): CoveOptions {
  const config = vscode.workspace.getConfiguration(SECTION);
  const flat: Record<string, SettingValue> = {};
  for (const name of SERVER_SETTINGS) {
    flat[name] = explicitValue(config.inspect<SettingValue>(name));
  }
  return toInitializationOptions(flat as FlatSettings);
}

function statusState(): StatusState {
  const config = vscode.workspace.getConfiguration(SECTION);
  return {
    phase,
    offline: config.get<boolean>("remote.offline", true),
    baseUrl: config.get<string>("remote.baseUrl", ""),
  };
}

function updateStatus(next?: ServerPhase): void {
  if (next !== undefined) {
    phase = next;
    if (next !== "ready") {
      completions = undefined; // what a stopped server said no longer holds
    }
  }
  if (statusItem === undefined) {
    return;
  }
  const view = statusView(statusState(), completions);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
  statusItem.backgroundColor =
    view.severity === "ok" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
}

/** Ask again in `delayMs` (replacing any earlier plan). */
function scheduleStatusRefresh(delayMs: number): void {
  if (refreshTimer !== undefined) {
    clearTimeout(refreshTimer);
  }
  refreshTimer = setTimeout(() => void refreshStatus(), delayMs);
}

/**
 * Ask the server who serves completions (`cove.status`) and show it; then again periodically while the window
 * has focus, since a skipped server is tried again after a while (the server's circuit breaker).
 */
async function refreshStatus(): Promise<void> {
  if (refreshTimer !== undefined) {
    clearTimeout(refreshTimer);
    refreshTimer = undefined;
  }
  const running = client;
  // While the model loads the answer is about to change: ask whatever the focus (a browser tab may never report it).
  const loading = completions === undefined || servingBackend(completions) === "loading";
  if (running === undefined || !running.isRunning() || (!vscode.window.state.focused && !loading)) {
    return; // a start, or the window's focus, asks again
  }
  const request = ++statusRequests;
  let answer: CompletionStatus | undefined;
  try {
    answer = parseCompletionStatus(
      await running.sendRequest(ExecuteCommandRequest.type, { command: "cove.status", arguments: [] }),
    );
  } catch {
    answer = undefined; // asked again below; the status bar is no place for an error dialog
  }
  if (request !== statusRequests || running !== client) {
    return; // a newer request, or another server, answers instead
  }
  completions = answer;
  updateStatus();
  scheduleStatusRefresh(statusView(statusState(), completions).refreshAfterMs);
}

/** A click on the item: who serves completions and why others are passed over, and what can be done. */
async function showStatusDetails(): Promise<void> {
  await refreshStatus();
  const chosen = await vscode.window.showQuickPick(statusDetails(statusState(), completions), {
    title: "Cove: who serves completions",
  });
  if (chosen?.action === "log") {
    client?.outputChannel.show(true);
  } else if (chosen?.action === "transcript") {
    await runAndReport("cove.transcript");
  } else if (chosen?.action === "restart") {
    await vscode.commands.executeCommand("cove.palette.restart");
  }
}

/** Whether the client has sent `didOpen` for the document (and not yet `didClose`). */
function isOpenOnServer(running: LanguageClient, document: vscode.TextDocument): boolean {
  const uri = document.uri.toString();
  for (const open of running.getFeature(DidOpenTextDocumentNotification.method).openDocuments) {
    if (open.uri.toString() === uri) {
      return true;
    }
  }
  return false;
}

/** `cove/cursor` for the editor's cursor now; silently nothing when the server is not there to hear it. */
function sendCursor(editor: vscode.TextEditor): void {
  const running = client;
  if (running === undefined || !running.isRunning() || !isOpenOnServer(running, editor.document)) {
    return;
  }
  const convert = running.code2ProtocolConverter;
  const params: TextDocumentPositionParams = {
    textDocument: convert.asTextDocumentIdentifier(editor.document),
    position: convert.asPosition(editor.selection.active),
  };
  // A hint for the server: if it cannot be sent, the next completion simply starts cold.
  running.sendNotification(CURSOR, params).catch(() => undefined);
  const selection = editor.selection;
  const range = selectedLines(selection.anchor, selection.active);
  if (range !== undefined) {
    // A selection that rests is code the user cares about: the server keeps it for completions' context.
    running.sendNotification(YANKED, { textDocument: params.textDocument, range }).catch(() => undefined);
  }
}

/** `cove/diagnostics` for a document the server has open: everything VS Code shows for it now. */
async function sendDiagnostics(uri: string): Promise<void> {
  const running = client;
  const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
  if (running === undefined || !running.isRunning() || document === undefined || !isOpenOnServer(running, document)) {
    return;
  }
  const convert = running.code2ProtocolConverter;
  const diagnostics = await convert.asDiagnostics(vscode.languages.getDiagnostics(document.uri));
  // Like the cursor, a hint: a run that does not hear of a problem sees it when it runs the tests.
  running
    .sendNotification(DIAGNOSTICS, { textDocument: convert.asTextDocumentIdentifier(document), diagnostics })
    .catch(() => undefined);
}

function cursorSettling(editor: vscode.TextEditor | undefined): void {
  if (editor !== undefined) {
    cursorMoves.moved(editor);
  }
}

/** `cove.path` as set (the `cove` on PATH when empty), and the folder the server runs in. */
function serverLaunch(): { command: string; folder: string | undefined } {
  const command = vscode.workspace.getConfiguration(SECTION).get<string>("path", "cove") || "cove";
  return { command, folder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath };
}

function createClient(): LanguageClient {
  const { command, folder } = serverLaunch();
  const server: ServerOptions = { command, args: ["lsp"], options: folder ? { cwd: folder } : {} };
  const options: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }],
    // A function, so that a restart sends the settings as they are then.
    initializationOptions: () => serverOptions(),
    outputChannelName: "Cove",
    errorHandler: {
      // A write to a crashed server's pipe is not the server misbehaving: the close that follows restarts it.
      error: (error, _message, count) => ({
        action: serverGone(error) || (count !== undefined && count <= 3) ? ErrorAction.Continue : ErrorAction.Shutdown,
      }),
      closed: () => serverStopped(),
    },
    middleware: {
      // A suggestion served while the status bar still says the model is loading: it has loaded; ask now.
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const items = await next(document, position, context, token);
        if (completions === undefined || servingBackend(completions) === "loading") {
          scheduleStatusRefresh(0);
        }
        return items;
      },
    },
  };
  const created = new LanguageClient("cove", "Cove", server, options);
  // The suggestion shown early while the user typed on is whole now: ask again, as VS Code would not.
  created.onNotification(SUGGESTION_READY_METHOD, (params: unknown) => {
    if (readyFor(vscode.window.activeTextEditor?.document.uri.toString(), params)) {
      void vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    }
  });
  created.onDidChangeState((event) => {
    if (event.newState === State.Running) {
      updateStatus("ready");
      void refreshStatus();
      cursorSettling(vscode.window.activeTextEditor);
    } else if (event.newState === State.Starting) {
      updateStatus("starting");
    } else {
      updateStatus(phase === "failed" ? "failed" : "stopped"); // a server given up on stays failed
    }
  });
  return created;
}

/** The server stopped unasked (killed, crashed): start it again unless it stops too often, and say which. */
function serverStopped(): { action: CloseAction; handled: boolean } {
  const decision = restarts.stopped(Date.now());
  updateStatus(decision.restart ? "starting" : "failed");
  void vscode.window.showWarningMessage(decision.message, "Show log").then((choice) => {
    if (choice === "Show log") {
      client?.outputChannel.show(true);
    }
  });
  return { action: decision.restart ? CloseAction.Restart : CloseAction.DoNotRestart, handled: true };
}

async function startClient(): Promise<void> {
  const { command, folder } = serverLaunch();
  if (findExecutable(command, process.env["PATH"] ?? "", folder ?? process.cwd()) === undefined) {
    // Not started at all: one message that says what to set, not the client's "couldn't create connection" too.
    const where = command.includes("/") ? "is not an executable file" : "is not on PATH";
    await startFailed(command, `\`${command}\` ${where}`);
    return;
  }
  client = createClient();
  updateStatus("starting");
  try {
    await client.start();
  } catch (err) {
    await startFailed(command, errorText(err)); // the client has logged it in the "Cove" output channel
  }
}

/** The server could not start: the status bar says failed, a message says what to change, with the setting. */
async function startFailed(command: string, reason: string): Promise<void> {
  updateStatus("failed");
  const choice = await vscode.window.showErrorMessage(
    `Cove: \`${command} lsp\` did not start (${reason}). Set cove.path to the cove executable, ` +
      "e.g. .venv/bin/cove in a clone of Cove, then run Cove: Restart server.",
    "Open settings",
  );
  if (choice === "Open settings") {
    // A machine setting: in a remote window (SSH, a container, code-server) it is listed under Remote only.
    await (vscode.env.remoteName === undefined
      ? vscode.commands.executeCommand("workbench.action.openSettings", "cove.path")
      : vscode.commands.executeCommand("workbench.action.openRemoteSettings", { query: "cove.path" }));
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  cursorMoves.cancel();
  problemChanges.cancel();
  if (running === undefined || !running.needsStop()) {
    return; // never started, or failed to: nothing left to stop
  }
  try {
    await running.dispose(); // stops the server (shutdown, exit) and drops the client's registrations
  } catch {
    // A server that died on its own has nothing left to stop.
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `workspace/executeCommand` on the server; errors are shown and give `undefined`. */
async function serverCommand(command: string, args: unknown[] = []): Promise<unknown> {
  if (client === undefined || !client.isRunning()) {
    void vscode.window.showWarningMessage("Cove: the server is not running (Cove: Restart server starts it).");
    return undefined;
  }
  try {
    return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  } catch (err) {
    void vscode.window.showErrorMessage(errorText(err));
    return undefined;
  }
}

/** Run a server command and report its result. */
async function runAndReport(command: string, args: unknown[] = []): Promise<void> {
  const result = await serverCommand(command, args);
  if (result === undefined) {
    return;
  }
  const message = resultMessage(command, result);
  if (message !== undefined) {
    void vscode.window.showInformationMessage(message);
  }
}

/** A long agent run with a cancellable notification; cancelling sends `cove.cancel`. */
async function runWithProgress(command: string, title: string, text: string): Promise<void> {
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (_progress, token) => {
      const cancelling = token.onCancellationRequested(() => void serverCommand("cove.cancel"));
      try {
        await runAndReport(command, [text]);
      } finally {
        cancelling.dispose();
      }
    },
  );
}

/**
 * Whether the agent can run; when it cannot, the server's reason (what to set) is shown and no question is asked
 * for that would be refused anyway.
 */
async function agentFit(): Promise<boolean> {
  const agent = parseAgentStatus(await serverCommand("cove.status"));
  if (agent === undefined || agent.fit) {
    return agent !== undefined;
  }
  const choice = await vscode.window.showWarningMessage(`Cove: ${agent.reason}`, "Open settings");
  if (choice === "Open settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "cove.remote");
  }
  return false;
}

/** A commit message for what is staged, from the local model, put into the Source Control input box to review. */
async function commitMessage(): Promise<void> {
  const git = vscode.extensions.getExtension<GitExtension>("vscode.git")?.exports?.getAPI(1);
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const repository = git?.repositories.find((r) => folder === undefined || r.rootUri.fsPath === folder.fsPath);
  const root = repository?.rootUri ?? folder;
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.SourceControl, title: "Cove is writing the commit message…" },
    () => serverCommand("cove.commitMessage", root === undefined ? [] : [root.toString()]),
  );
  const message = typeof result === "object" && result !== null ? (result as { message?: unknown }).message : undefined;
  if (typeof message !== "string") {
    return; // the error (e.g. nothing staged) was shown
  }
  if (repository !== undefined) {
    repository.inputBox.value = message;
  } else {
    void vscode.window.showInformationMessage(`Cove: ${message}`);
  }
}

/**
 * The workspace context a completion at the cursor gets (imported and indexed definitions, code seen lately, the
 * index's neighbours, enclosing headers), opened beside the code: why a suggestion knows, or misses, something.
 */
async function showContext(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const running = client;
  if (editor === undefined || running === undefined || !isOpenOnServer(running, editor.document)) {
    void vscode.window.showInformationMessage("Cove: open a file Cove serves and put the cursor where you type.");
    return;
  }
  const convert = running.code2ProtocolConverter;
  const position = convert.asPosition(editor.selection.active);
  const uri = convert.asTextDocumentIdentifier(editor.document).uri;
  const result = await serverCommand("cove.showContext", [uri, position]);
  const context = typeof result === "object" && result !== null ? (result as { context?: unknown }).context : undefined;
  if (typeof context !== "string") {
    return; // the error was shown
  }
  // A read-only view (no "save changes?" on closing it), highlighted as the code's language, never served itself.
  const name = editor.document.uri.path.split("/").pop() || "document";
  const view = vscode.Uri.from({ scheme: CONTEXT_SCHEME, path: `/${name} (completion context)` });
  contextViews.set(view.toString(), context === "" ? "(no workspace context at this place)\n" : context);
  contextChanged.fire(view);
  const shown = await vscode.languages.setTextDocumentLanguage(
    await vscode.workspace.openTextDocument(view),
    editor.document.languageId,
  );
  await vscode.window.showTextDocument(shown, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

/** The scheme of the read-only views of a place's completion context, and what each shows. */
const CONTEXT_SCHEME = "cove-context";
const contextViews = new Map<string, string>();
const contextChanged = new vscode.EventEmitter<vscode.Uri>();

/** The part of the built-in Git extension's API used here. */
interface GitExtension {
  getAPI(version: 1): { repositories: { rootUri: vscode.Uri; inputBox: { value: string } }[] };
}

async function ask(): Promise<void> {
  if (!(await agentFit())) {
    return;
  }
  const question = await vscode.window.showInputBox({
    title: "Cove: Ask about the repository",
    prompt: "A question about this repository (the agent only reads)",
    ignoreFocusOut: true,
  });
  if (question !== undefined && question.trim() !== "") {
    await runWithProgress("cove.ask", "Cove is reading the repository…", question.trim());
  }
}

async function agentTask(): Promise<void> {
  if (!(await agentFit())) {
    return;
  }
  const task = await vscode.window.showInputBox({
    title: "Cove: Run an agent task",
    prompt: "What should the agent do?",
    ignoreFocusOut: true,
  });
  if (task !== undefined && task.trim() !== "") {
    await runWithProgress("cove.agent", "Cove is working on the task…", task.trim());
  }
}

async function rejectPlan(): Promise<void> {
  const feedback = await vscode.window.showInputBox({
    title: "Cove: Reject plan",
    prompt: "What should change in the plan? (optional)",
    ignoreFocusOut: true,
  });
  if (feedback !== undefined) {
    await runAndReport("cove.rejectPlan", feedback.trim() === "" ? [] : [feedback.trim()]);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "cove.palette.status";
  updateStatus("starting");
  statusItem.show();

  const register = (id: string, handler: () => Promise<void>): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  };
  const chat = new ChatView(() => ({ ...serverLaunch(), env: toEnvironment(serverOptions()) }));
  chat.register(context);
  register("cove.palette.agentView", () => chat.open(""));
  register("cove.palette.askSelection", async () => {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || editor.selection.isEmpty) {
      return chat.open("");
    }
    const name = vscode.workspace.asRelativePath(editor.document.uri);
    const text = editor.document.getText(editor.selection);
    await chat.open(`About @${name}, lines ${editor.selection.start.line + 1}-${editor.selection.end.line + 1}:\n${text}\n\n`);
  });
  register("cove.palette.ask", ask);
  register("cove.palette.agent", agentTask);
  register("cove.palette.approvePlan", () => runAndReport("cove.approvePlan"));
  register("cove.palette.rejectPlan", rejectPlan);
  register("cove.palette.cancel", () => runAndReport("cove.cancel"));
  register("cove.palette.undo", () => runAndReport("cove.undo"));
  register("cove.palette.transcript", () => runAndReport("cove.transcript"));
  register("cove.palette.status", showStatusDetails);
  register("cove.palette.commitMessage", commitMessage);
  register("cove.palette.showContext", showContext);
  context.subscriptions.push(
    contextChanged,
    vscode.workspace.registerTextDocumentContentProvider(CONTEXT_SCHEME, {
      onDidChange: contextChanged.event,
      provideTextDocumentContent: (uri) => contextViews.get(uri.toString()) ?? "",
    }),
  );
  register("cove.palette.restart", async () => {
    restarts.reset();
    await stopClient();
    await startClient();
  });

  context.subscriptions.push(
    statusItem,
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      updateStatus();
      if (event.affectsConfiguration(`${SECTION}.path`)) {
        await stopClient();
        await startClient();
      } else if (client?.isRunning()) {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: serverOptions() });
        scheduleStatusRefresh(AFTER_CONFIGURATION_MS);
      }
    }),
    vscode.languages.onDidChangeDiagnostics((event) => problemChanges.changed(event.uris.map((u) => u.toString()))),
    vscode.window.onDidChangeTextEditorSelection((event) => cursorSettling(event.textEditor)),
    vscode.window.onDidChangeActiveTextEditor(cursorSettling),
    vscode.window.onDidChangeWindowState((state) => {
      if (state.focused) {
        cursorSettling(vscode.window.activeTextEditor);
        void refreshStatus();
      }
    }),
  );

  // Not awaited: activation ends now, so that views (the agent's) resolve while the server starts, and a start that
  // fails is not held open by its error message waiting for a click.
  void startClient();
}

export async function deactivate(): Promise<void> {
  if (refreshTimer !== undefined) {
    clearTimeout(refreshTimer);
    refreshTimer = undefined;
  }
  await stopClient();
}
