#!/usr/bin/env node
/**
 * Drives `cove lsp` over stdio with vscode-languageserver-protocol, the library VS Code's client is built on,
 * the way VS Code would: initialize with inline completion and work-done progress, list code actions, ask for
 * an inline completion from the real model, shut down.
 *
 * The server command: env COVE_LSP_CMD, either a JSON array (`["python", "-m", "cove.cli", "lsp"]`, used as
 * is) or a path to the cove executable (`lsp` is added); by default ../../.venv/bin/cove from this package.
 * Exit code 0 on success; 1 with a message on stderr otherwise.
 */

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import {
  CodeActionRequest,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
} from "vscode-languageserver-protocol/node";

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const INLINE_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 30_000;

/** The server's command line from COVE_LSP_CMD (JSON array or executable path) or the repository's venv. */
function serverCommand(value = process.env.COVE_LSP_CMD) {
  if (value === undefined || value.trim() === "") {
    return [resolve(PACKAGE, "../../.venv/bin/cove"), "lsp"];
  }
  if (value.trim().startsWith("[")) {
    const parsed = JSON.parse(value);
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((part) => typeof part === "string")) {
      throw new Error(`COVE_LSP_CMD must be a non-empty JSON array of strings, not ${value}`);
    }
    return parsed;
  }
  return [value, "lsp"];
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** The extension's own settings mapping (out/settings.js, from `npm run build`), so the server checks its shape. */
function settingsModule() {
  const built = join(PACKAGE, "out", "settings.js");
  if (!existsSync(built)) {
    throw new Error(`${built} is missing: run \`npm run build\` first`);
  }
  return createRequire(import.meta.url)(built);
}

const SOURCE = ["def add(a, b):", "    return a", ""].join("\n");

async function main() {
  const project = mkdtempSync(join(tmpdir(), "cove-vscode-protocol-"));
  mkdirSync(join(project, ".git"));
  const file = join(project, "add.py");
  writeFileSync(file, SOURCE);
  const projectUri = pathToFileURL(project).href;
  const uri = pathToFileURL(file).href;

  const { toInitializationOptions } = settingsModule();
  const [command, ...args] = serverCommand();
  console.log(`server: ${[command, ...args].join(" ")}`);
  const child = spawn(command, args, { cwd: project, stdio: ["pipe", "pipe", "pipe"] });
  const stderr = [];
  child.stderr.on("data", (chunk) => stderr.push(chunk));
  const spawned = new Promise((resolveSpawn, rejectSpawn) => {
    child.once("spawn", resolveSpawn);
    child.once("error", rejectSpawn);
  });
  const exited = new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
  const serverLog = () => Buffer.concat(stderr).toString("utf8").slice(-4000);

  const connection = createProtocolConnection(
    new StreamMessageReader(child.stdout),
    new StreamMessageWriter(child.stdin),
  );
  const progress = [];
  const messages = [];
  const errors = [];
  // What VS Code answers: it accepts progress tokens and documents, and is never asked to apply edits here.
  connection.onRequest("window/workDoneProgress/create", () => null);
  connection.onRequest("client/registerCapability", () => null);
  connection.onRequest("workspace/configuration", (params) => params.items.map(() => null));
  connection.onRequest("window/showMessageRequest", () => null);
  connection.onRequest("window/showDocument", () => ({ success: true }));
  connection.onRequest("workspace/applyEdit", () => ({ applied: false, failureReason: "protocol test" }));
  connection.onNotification("$/progress", (params) => progress.push(params.value));
  connection.onNotification("window/showMessage", (params) => {
    (params.type === 1 ? errors : messages).push(params.message);
  });
  connection.onNotification("window/logMessage", () => undefined);
  connection.onNotification("telemetry/event", () => undefined);
  connection.onUnhandledNotification(() => undefined);
  connection.listen();

  let failure;
  try {
    await spawned;
    const initialized = await withTimeout(
      connection.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        clientInfo: { name: "Visual Studio Code", version: "1.91.0" },
        rootUri: projectUri,
        workspaceFolders: [{ uri: projectUri, name: "project" }],
        initializationOptions: toInitializationOptions({
          path: "cove",
          "completion.maxTokens": 16,
          "completion.multiline": "auto",
          "remote.baseUrl": "",
          "remote.offline": true,
          "agent.mode": "auto-read",
        }),
        capabilities: {
          window: { workDoneProgress: true, showMessage: {}, showDocument: { support: true } },
          workspace: {
            applyEdit: true,
            workspaceEdit: { documentChanges: true },
            executeCommand: { dynamicRegistration: true },
            didChangeConfiguration: { dynamicRegistration: true },
          },
          textDocument: {
            synchronization: { didSave: true, dynamicRegistration: true },
            inlineCompletion: { dynamicRegistration: true },
            completion: { completionItem: { snippetSupport: true } },
            codeAction: {
              dynamicRegistration: true,
              resolveSupport: { properties: ["edit", "command"] },
              dataSupport: true,
              codeActionLiteralSupport: {
                codeActionKind: { valueSet: ["", "quickfix", "refactor", "refactor.rewrite", "source"] },
              },
            },
          },
        },
      }),
      REQUEST_TIMEOUT_MS,
      "initialize",
    );
    const capabilities = initialized.capabilities;
    check(capabilities.inlineCompletionProvider, "the server does not advertise inlineCompletionProvider");
    check(
      typeof capabilities.codeActionProvider === "object" && capabilities.codeActionProvider.resolveProvider === true,
      `codeActionProvider.resolveProvider is not true: ${JSON.stringify(capabilities.codeActionProvider)}`,
    );
    const commands = capabilities.executeCommandProvider?.commands ?? [];
    check(commands.includes("cove.ask"), `executeCommandProvider.commands lacks cove.ask: ${JSON.stringify(commands)}`);
    console.log(`initialize: ok (${commands.length} commands)`);

    await connection.sendNotification(InitializedNotification.type, {});
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: "python", version: 1, text: SOURCE },
    });

    // What the extension sends when a setting changes (settings the server rejects come back as errors).
    await connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: toInitializationOptions({
        "completion.maxTokens": 16,
        "completion.multiline": "never",
        "remote.baseUrl": "http://127.0.0.1:11434/v1",
        "remote.model": "qwen",
        "remote.offline": true,
        "agent.mode": "ask",
      }),
    });

    const inFunction = { line: 1, character: 4 };
    const actions = await withTimeout(
      connection.sendRequest(CodeActionRequest.type, {
        textDocument: { uri },
        range: { start: inFunction, end: inFunction },
        context: { diagnostics: [], triggerKind: 1 },
      }),
      REQUEST_TIMEOUT_MS,
      "textDocument/codeAction",
    );
    const titles = (actions ?? []).map((action) => action.title);
    check(
      titles.some((title) => title.startsWith("Cove: explain")),
      `no "Cove: explain" code action: ${JSON.stringify(titles)}`,
    );
    console.log(`codeAction: ok (${titles.join("; ")})`);

    const endOfLine = { line: 1, character: "    return a".length };
    const started = Date.now();
    const completion = await withTimeout(
      connection.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri },
        position: endOfLine,
        context: { triggerKind: InlineCompletionTriggerKind.Invoked },
      }),
      INLINE_TIMEOUT_MS,
      "textDocument/inlineCompletion",
    );
    const items = Array.isArray(completion) ? completion : completion?.items;
    check(Array.isArray(items), `inlineCompletion did not return a list: ${JSON.stringify(completion)}`);
    const texts = items.map((item) => (typeof item.insertText === "string" ? item.insertText : item.insertText.value));
    console.log(`inlineCompletion: ok in ${Date.now() - started} ms, ${items.length} item(s) ${JSON.stringify(texts)}`);
    const ends = progress.filter((value) => value?.kind === "end").map((value) => value.message ?? "");
    if (ends.length > 0) {
      console.log(`progress: ${ends.join("; ")}`);
    }
    if (messages.length > 0) {
      console.log(`messages: ${messages.join("; ")}`);
    }
    check(errors.length === 0, `the server showed errors: ${errors.join("; ")}`);

    await withTimeout(connection.sendRequest(ShutdownRequest.type), REQUEST_TIMEOUT_MS, "shutdown");
    await connection.sendNotification(ExitNotification.type);
    const { code, signal } = await withTimeout(exited, REQUEST_TIMEOUT_MS, "exit");
    check(code === 0, `the server exited with code ${code} (signal ${signal}) after exit`);
    console.log("shutdown: ok");
  } catch (err) {
    failure = err;
  } finally {
    connection.dispose();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill();
    }
    rmSync(project, { recursive: true, force: true });
  }
  if (failure !== undefined) {
    console.error(`protocol test FAILED: ${failure instanceof Error ? failure.message : String(failure)}`);
    console.error(`--- server stderr (last 4000 characters) ---\n${serverLog()}`);
    process.exit(1);
  }
  console.log("protocol test passed");
}

main().catch((err) => {
  console.error(`protocol test FAILED: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
