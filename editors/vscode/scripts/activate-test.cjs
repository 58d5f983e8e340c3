#!/usr/bin/env node
/**
 * Activates the built extension (out/extension.js) with a stand-in for the `vscode` module, so that the real
 * vscode-languageclient starts the real `cove lsp`. VS Code itself cannot run here; this checks what
 * extension.ts adds on top of the client: the server starts with the mapped settings, a settings change reaches
 * it, the palette commands talk to it, the status bar follows it, restart and deactivate work, and a wrong
 * `cove.path` ends in "Cove: failed" with a hint.
 *
 * The stand-in implements what the client touches on start-up; anything else is a permissive no-op. The server
 * command: env COVE_EXTENSION_PATH (the cove executable), by default ../../.venv/bin/cove from this package.
 * Exit code 0 on success; 1 with a message otherwise.
 */

"use strict";

const Module = require("node:module");
const path = require("node:path");

const PACKAGE = path.resolve(__dirname, "..");
const COVE = process.env.COVE_EXTENSION_PATH || path.resolve(PACKAGE, "../../.venv/bin/cove");
const WAIT_MS = 60_000;

// ---- the stand-in for `vscode` ----

/** Any property, call or construction gives another no-op (for APIs the client only registers with). */
function permissive(name) {
  return new Proxy(function () {}, {
    get(_target, key) {
      if (key === "then") return undefined; // not a promise
      if (key === Symbol.iterator) return function* () {};
      if (key === Symbol.toPrimitive) return () => name;
      return permissive(`${name}.${String(key)}`);
    },
    apply: () => permissive(`${name}()`),
    construct: () => permissive(`new ${name}`),
  });
}

function withFallback(object, name) {
  return new Proxy(object, { get: (target, key) => (key in target ? target[key] : permissive(`${name}.${String(key)}`)) });
}

class Disposable {
  constructor(onDispose) {
    this.onDispose = onDispose;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((item) => item?.dispose?.()));
  }
  dispose() {
    this.onDispose?.();
  }
}

class EventEmitter {
  constructor() {
    this.listeners = [];
    this.event = (listener) => {
      this.listeners.push(listener);
      return new Disposable(() => (this.listeners = this.listeners.filter((l) => l !== listener)));
    };
  }
  async fire(value) {
    await Promise.all(this.listeners.map((listener) => listener(value)));
  }
  dispose() {
    this.listeners = [];
  }
}

const noEvent = () => new Disposable();
const userSettings = {}; // what the user set (globalValue), by key under `cove.`
const defaults = { path: "cove", "remote.offline": true, "remote.baseUrl": "" };
const configuration = {
  get: (key, fallback) => (key in userSettings ? userSettings[key] : key in defaults ? defaults[key] : fallback),
  inspect: (key) => ({ key: `cove.${key}`, defaultValue: defaults[key], globalValue: userSettings[key] }),
  has: (key) => key in userSettings || key in defaults,
  update: async () => undefined,
};
const configurationChanged = new EventEmitter();
const commands = new Map();
const shown = []; // [kind, message]
let statusItem;

const vscode = {
  version: "1.91.0",
  env: { appName: "Visual Studio Code", language: "en", machineId: "test", sessionId: "test", uiKind: 1 },
  Disposable,
  EventEmitter,
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  Uri: {
    file: (fsPath) => ({ scheme: "file", fsPath, toString: () => `file://${fsPath}` }),
    parse: (value) => ({ scheme: value.split(":")[0], fsPath: value.replace(/^file:\/\//, ""), toString: () => value }),
  },
  workspace: withFallback(
    {
      getConfiguration: () => configuration,
      workspaceFolders: undefined,
      textDocuments: [],
      notebookDocuments: [],
      onDidChangeConfiguration: configurationChanged.event,
      onDidOpenTextDocument: noEvent,
      onDidCloseTextDocument: noEvent,
      onDidChangeTextDocument: noEvent,
      onDidSaveTextDocument: noEvent,
      onWillSaveTextDocument: noEvent,
      onDidChangeWorkspaceFolders: noEvent,
      onDidCreateFiles: noEvent,
      onDidRenameFiles: noEvent,
      onDidDeleteFiles: noEvent,
    },
    "workspace",
  ),
  window: withFallback(
    {
      createStatusBarItem: () => (statusItem = { text: "", tooltip: "", command: undefined, show() {}, dispose() {} }),
      showErrorMessage: async (message) => void shown.push(["error", message]),
      showWarningMessage: async (message) => void shown.push(["warning", message]),
      showInformationMessage: async (message) => void shown.push(["info", message]),
      createOutputChannel: (name) => {
        const write = (text) => process.env.COVE_TEST_VERBOSE && process.stderr.write(`[${name}] ${text}\n`);
        return {
          name,
          logLevel: 2,
          onDidChangeLogLevel: noEvent,
          append: write,
          appendLine: write,
          replace: write,
          trace: write,
          debug: write,
          info: write,
          warn: write,
          error: write,
          clear() {},
          show() {},
          hide() {},
          dispose() {},
        };
      },
      activeTextEditor: undefined,
      visibleTextEditors: [],
      onDidChangeActiveTextEditor: noEvent,
      onDidChangeVisibleTextEditors: noEvent,
      tabGroups: { all: [], onDidChangeTabs: noEvent },
    },
    "window",
  ),
  commands: {
    registerCommand: (id, handler) => {
      if (commands.has(id)) throw new Error(`command '${id}' already exists`); // as VS Code does
      commands.set(id, handler);
      return new Disposable(() => commands.delete(id));
    },
    executeCommand: async (id, ...args) => commands.get(id)?.(...args),
  },
};

const load = Module._load;
Module._load = function (request, ...rest) {
  return request === "vscode" ? withFallback(vscode, "vscode") : load.call(this, request, ...rest);
};

// ---- the checks ----

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function waitFor(what, predicate) {
  const deadline = Date.now() + WAIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function shownSince(start, kind) {
  return shown.slice(start).filter(([k]) => k === kind).map(([, message]) => message);
}

async function changeSetting(key, value) {
  userSettings[key] = value;
  await configurationChanged.fire({
    affectsConfiguration: (section) => section === "cove" || `cove.${key}` === section || `cove.${key}`.startsWith(`${section}.`),
  });
}

async function main() {
  const extension = require(path.join(PACKAGE, "out", "extension.js"));
  const context = { subscriptions: [] };

  // A setting the server rejects proves the mapped settings reached it as initializationOptions.
  userSettings.path = COVE;
  userSettings["completion.maxTokens"] = 12;
  userSettings["completion.multiline"] = "sometimes";
  await extension.activate(context);
  check(statusItem !== undefined, "no status bar item");
  check(statusItem.text === "Cove: ready (offline)", `status after activate: ${statusItem.text}`);
  check(statusItem.command === "cove.palette.transcript", `status bar click: ${statusItem.command}`);
  const palette = [...commands.keys()].filter((id) => id.startsWith("cove.palette.")).sort();
  check(palette.length === 8, `palette commands: ${palette.join(", ")}`);
  check(commands.has("cove.ask") && commands.has("cove.apply"), "the client did not register the server's commands");
  await waitFor("the server's report of the bad initializationOptions", () =>
    shownSince(0, "error").some((m) => m.includes("completion.multiline") && m.includes("sometimes")),
  );
  console.log(`activate: ok (${statusItem.text}; ${commands.size} commands)`);

  // A settings change goes out as didChangeConfiguration with the mapped settings.
  let mark = shown.length;
  await changeSetting("completion.multiline", "never");
  await changeSetting("agent.mode", "reckless");
  await waitFor("the server's report of the bad didChangeConfiguration settings", () =>
    shownSince(mark, "error").some((m) => m.includes("agent.mode") && m.includes("reckless")),
  );
  await changeSetting("agent.mode", "ask");
  console.log("didChangeConfiguration: ok");

  mark = shown.length;
  await commands.get("cove.palette.cancel")();
  await commands.get("cove.palette.approvePlan")();
  const infos = shownSince(mark, "info");
  check(infos[0] === "Cove: no agent run to cancel", `cove.cancel: ${JSON.stringify(shown.slice(mark))}`);
  check(infos[1] === "Cove: no plan is waiting for a decision", `cove.approvePlan: ${JSON.stringify(shown.slice(mark))}`);
  console.log("palette commands: ok");

  await changeSetting("remote.baseUrl", "http://127.0.0.1:11434/v1");
  await changeSetting("remote.offline", false);
  check(statusItem.text === "Cove: ready", `status with a remote server: ${statusItem.text}`);
  await commands.get("cove.palette.restart")();
  check(statusItem.text === "Cove: ready", `status after restart: ${statusItem.text}`);
  console.log("restart: ok");

  // A wrong cove.path restarts the client, which fails with a hint.
  mark = shown.length;
  await changeSetting("path", path.join(PACKAGE, "no-such-cove"));
  check(statusItem.text === "Cove: failed", `status with a wrong cove.path: ${statusItem.text}`);
  check(
    shownSince(mark, "error").some((m) => m.includes("Set cove.path")),
    `no hint for a wrong cove.path: ${JSON.stringify(shown.slice(mark))}`,
  );
  await commands.get("cove.palette.undo")();
  check(shownSince(mark, "warning").length === 1, "a command without a server did not warn");
  console.log("wrong cove.path: ok");

  await changeSetting("path", COVE);
  check(statusItem.text === "Cove: ready", `status after fixing cove.path: ${statusItem.text}`);
  await extension.deactivate();
  check(statusItem.text === "Cove: stopped", `status after deactivate: ${statusItem.text}`);
  console.log("deactivate: ok");
  console.log("activate test passed");
}

const timer = setTimeout(() => {
  console.error("activate test FAILED: no result within 180 s");
  process.exit(1);
}, 180_000);
main().then(
  () => {
    clearTimeout(timer);
    process.exit(0);
  },
  (err) => {
    console.error(`activate test FAILED: ${err instanceof Error ? err.message : String(err)}`);
    console.error(`shown messages: ${JSON.stringify(shown, null, 1)}`);
    process.exit(1);
  },
);
