/**
 * Cove for VS Code: starts `cove lsp` and lets vscode-languageclient do the protocol.
 *
 * The client already covers inline completions (ghost text), code actions and their resolve, the server's
 * commands (`cove.apply`, `cove.show`, `cove.accepted`... become VS Code commands), `$/progress`,
 * `window/showMessageRequest`, `window/showDocument` and `workspace/applyEdit`. This file adds the palette
 * commands (under `cove.palette.*`, because the client registers the server's own `cove.*` ids), the status
 * bar item, and the settings the server gets.
 */

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";

import {
  SERVER_SETTINGS,
  explicitValue,
  resultMessage,
  statusText,
  toInitializationOptions,
  type CoveOptions,
  type FlatSettings,
  type ServerPhase,
  type SettingValue,
} from "./settings";

const SECTION = "cove";

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem | undefined;
let phase: ServerPhase = "starting";

/** The settings the user changed (defaults are left to Cove's own config files), mapped for the server. */
function serverOptions(): CoveOptions {
  const config = vscode.workspace.getConfiguration(SECTION);
  const flat: Record<string, SettingValue> = {};
  for (const name of SERVER_SETTINGS) {
    flat[name] = explicitValue(config.inspect<SettingValue>(name));
  }
  return toInitializationOptions(flat as FlatSettings);
}

function updateStatus(next?: ServerPhase): void {
  if (next !== undefined) {
    phase = next;
  }
  if (statusItem === undefined) {
    return;
  }
  const config = vscode.workspace.getConfiguration(SECTION);
  statusItem.text = statusText({
    phase,
    offline: config.get<boolean>("remote.offline", true),
    baseUrl: config.get<string>("remote.baseUrl", ""),
  });
  statusItem.tooltip = "Cove: click to show the agent transcript";
}

function createClient(): LanguageClient {
  const command = vscode.workspace.getConfiguration(SECTION).get<string>("path", "cove") || "cove";
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const server: ServerOptions = { command, args: ["lsp"], options: folder ? { cwd: folder } : {} };
  const options: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }],
    // A function, so that a restart sends the settings as they are then.
    initializationOptions: () => serverOptions(),
    outputChannelName: "Cove",
  };
  const created = new LanguageClient("cove", "Cove", server, options);
  created.onDidChangeState((event) => {
    if (event.newState === State.Running) {
      updateStatus("ready");
    } else if (event.newState === State.Starting) {
      updateStatus("starting");
    } else {
      updateStatus("stopped");
    }
  });
  return created;
}

async function startClient(): Promise<void> {
  client = createClient();
  updateStatus("starting");
  try {
    await client.start();
  } catch (err) {
    updateStatus("failed");
    // The client has shown its own error (and logged it in the "Cove" output channel); say what to change.
    const path = vscode.workspace.getConfiguration(SECTION).get<string>("path", "cove");
    const choice = await vscode.window.showErrorMessage(
      `Cove: \`${path} lsp\` did not start (${errorText(err)}). Set cove.path to the cove executable, ` +
        "e.g. .venv/bin/cove in a clone of Cove, then run Cove: Restart server.",
      "Open settings",
    );
    if (choice === "Open settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "cove.path");
    }
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
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

async function ask(): Promise<void> {
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
  statusItem.command = "cove.palette.transcript";
  updateStatus("starting");
  statusItem.show();

  const register = (id: string, handler: () => Promise<void>): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  };
  register("cove.palette.ask", ask);
  register("cove.palette.agent", agentTask);
  register("cove.palette.approvePlan", () => runAndReport("cove.approvePlan"));
  register("cove.palette.rejectPlan", rejectPlan);
  register("cove.palette.cancel", () => runAndReport("cove.cancel"));
  register("cove.palette.undo", () => runAndReport("cove.undo"));
  register("cove.palette.transcript", () => runAndReport("cove.transcript"));
  register("cove.palette.restart", async () => {
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
      }
    }),
  );

  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
