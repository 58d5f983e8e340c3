#!/usr/bin/env node
/**
 * Activates the bundled extension (dist/extension.js, as the .vsix ships it) with a stand-in for the `vscode`
 * module, so that the real vscode-languageclient starts the real `cove lsp`. VS Code itself cannot run here; this checks what
 * extension.ts adds on top of the client: the server starts with the mapped settings, a settings change reaches
 * it, the palette commands talk to it, the status bar follows it (and says who serves completions, from
 * `cove.status`), the cursor reaches the server as `cove/cursor` (counted in `cove.status`'s `warm.requested`),
 * restart and deactivate work, and a wrong `cove.path` ends in "Cove: failed" with a hint.
 *
 * The stand-in implements what the client touches on start-up; anything else is a permissive no-op. The server
 * command: env COVE_EXTENSION_PATH (the cove executable), by default ../../.venv/bin/cove from this package.
 * Exit code 0 on success; 1 with a message otherwise.
 */

"use strict";

const fs = require("node:fs");
const Module = require("node:module");
const os = require("node:os");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

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

class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}

/** A file's URI as VS Code writes it (percent-encoded: a space is %20). */
function fileUri(fsPath) {
  const href = pathToFileURL(fsPath).href;
  return { scheme: "file", fsPath, path: fsPath, toString: () => href, toJSON: () => href };
}

/** A text document as the client reads it for didOpen. */
function textDocument(fsPath, languageId) {
  const text = fs.readFileSync(fsPath, "utf8");
  return { uri: fileUri(fsPath), fileName: fsPath, languageId, version: 1, isClosed: false, getText: () => text };
}

/** `languages.match` for the filters the extension uses ({scheme}, {language}). */
function matchScore(selector, document) {
  const filters = Array.isArray(selector) ? selector : [selector];
  return filters.some(
    (filter) =>
      (filter.scheme === undefined || filter.scheme === document.uri.scheme) &&
      (filter.language === undefined || filter.language === document.languageId),
  )
    ? 10
    : 0;
}
const userSettings = {}; // what the user set (globalValue), by key under `cove.`
// The client traces every message with its params to the output channel: the checks read what it sent there.
const defaults = { path: "cove", "remote.offline": true, "remote.baseUrl": "", "trace.server": "verbose" };
const configuration = {
  get: (key, fallback) => (key in userSettings ? userSettings[key] : key in defaults ? defaults[key] : fallback),
  inspect: (key) => ({ key: `cove.${key}`, defaultValue: defaults[key], globalValue: userSettings[key] }),
  has: (key) => key in userSettings || key in defaults,
  update: async () => undefined,
};
const configurationChanged = new EventEmitter();
const documentOpened = new EventEmitter();
const selectionChanged = new EventEmitter();
const activeEditorChanged = new EventEmitter();
const windowStateChanged = new EventEmitter();
const commands = new Map();
const shown = []; // [kind, message]
const picks = []; // the items of each quick pick shown
const inputBoxes = []; // the options of each input box shown (answered with Escape)
const traced = []; // what the client wrote to its output channels
let statusItem;

const vscode = {
  version: "1.91.0",
  env: { appName: "Visual Studio Code", language: "en", machineId: "test", sessionId: "test", uiKind: 1 },
  Disposable,
  EventEmitter,
  ThemeColor,
  LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  Uri: {
    file: fileUri,
    parse: (value) => ({ scheme: value.split(":")[0], fsPath: value.replace(/^file:\/\//, ""), toString: () => value }),
  },
  languages: withFallback({ match: matchScore }, "languages"),
  workspace: withFallback(
    {
      getConfiguration: () => configuration,
      workspaceFolders: undefined,
      textDocuments: [],
      notebookDocuments: [],
      onDidChangeConfiguration: configurationChanged.event,
      onDidOpenTextDocument: documentOpened.event,
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
      createStatusBarItem: () =>
        (statusItem = {
          text: "",
          tooltip: "",
          command: undefined,
          backgroundColor: undefined,
          show() {},
          dispose() {},
        }),
      showQuickPick: async (items) => void picks.push(await items),
      showInputBox: async (options) => void inputBoxes.push(options),
      showErrorMessage: async (message) => void shown.push(["error", message]),
      showWarningMessage: async (message) => void shown.push(["warning", message]),
      showInformationMessage: async (message) => void shown.push(["info", message]),
      createOutputChannel: (name) => {
        const write = (text) => {
          traced.push(String(text));
          if (process.env.COVE_TEST_VERBOSE) process.stderr.write(`[${name}] ${text}\n`);
        };
        return {
          name,
          logLevel: 1, // Trace
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
      state: { focused: true },
      onDidChangeActiveTextEditor: activeEditorChanged.event,
      onDidChangeTextEditorSelection: selectionChanged.event,
      onDidChangeWindowState: windowStateChanged.event,
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
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The params of each notification `method` the client sent after trace entry `start` (from its trace). */
function notificationsSince(start, method) {
  const sent = [];
  for (const text of traced.slice(start)) {
    const match = /Sending notification '([^']+)'\.\s*(?:Params: ([\s\S]*))?$/.exec(text);
    if (match && match[1] === method) sent.push(match[2] ? JSON.parse(match[2]) : undefined);
  }
  return sent;
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

/** The status bar's text once it says `text` (it asks the server on its own: after start, after a change). */
async function statusBarSays(text) {
  try {
    await waitFor("the status bar", () => statusItem.text === text);
  } catch {
    throw new Error(`the status bar says ${JSON.stringify(statusItem.text)}, not ${JSON.stringify(text)}`);
  }
}

/** How many `cove/cursor` notifications the server has received (its `cove.status` says). */
async function cursorsReceived() {
  const status = await commands.get("cove.status")();
  const requested = status?.warm?.requested;
  check(typeof requested === "number", `cove.status has no warm.requested: ${JSON.stringify(status)}`);
  return requested;
}

/** An editor on `document` whose cursor moves through `lines` (column 4), as VS Code reports each move. */
async function moveCursor(editor, lines) {
  for (const line of lines) {
    editor.selection = { active: { line, character: 4 }, anchor: { line, character: 4 } };
    await selectionChanged.fire({ textEditor: editor, selections: [editor.selection], kind: 2 });
  }
}

async function main() {
  const extension = require(path.join(PACKAGE, "dist", "extension.js"));
  const context = { subscriptions: [] };
  const project = fs.mkdtempSync(path.join(os.tmpdir(), "cove-activate-"));
  try {
    await checkExtension(extension, context, project);
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
}

async function checkExtension(extension, context, project) {
  // [routing] complete names a remote server first (the server, started by the client, reads it from its
  // environment; its config layers apply once the editor's settings are valid, below).
  process.env.COVE_ROUTING_COMPLETE = '["remote", "local"]';
  // A setting the server rejects proves the mapped settings reached it as initializationOptions.
  userSettings.path = COVE;
  userSettings["completion.maxTokens"] = 12;
  userSettings["completion.multiline"] = "sometimes";
  await extension.activate(context);
  check(statusItem !== undefined, "no status bar item");
  check(statusItem.command === "cove.palette.status", `status bar click: ${statusItem.command}`);
  const palette = [...commands.keys()].filter((id) => id.startsWith("cove.palette.")).sort();
  check(palette.length === 13, `palette commands: ${palette.join(", ")}`);
  // Activation does not wait for the server (the agent view resolves meanwhile): its commands come once it runs.
  await waitFor("the server's commands", () => commands.has("cove.ask") && commands.has("cove.apply"));
  await waitFor("the server's report of the bad initializationOptions", () =>
    shownSince(0, "error").some((m) => m.includes("completion.multiline") && m.includes("sometimes")),
  );
  // The server left out the editor's settings, not its other layers: the environment's [routing] complete
  // applies (no remote server is set, so the local model serves); the status bar asks once started, and again
  // while the model loads.
  await statusBarSays("$(warning) Cove: local (fell back, offline)");
  console.log(`activate: ok (${commands.size} commands; ${statusItem.text})`);

  // A settings change goes out as didChangeConfiguration with the mapped settings.
  let mark = shown.length;
  await changeSetting("completion.multiline", "never");
  await changeSetting("agent.mode", "reckless");
  await waitFor("the server's report of the bad didChangeConfiguration settings", () =>
    shownSince(mark, "error").some((m) => m.includes("agent.mode") && m.includes("reckless")),
  );
  await changeSetting("agent.mode", "ask");
  console.log("didChangeConfiguration: ok");

  // Valid settings: every config layer applies, [routing] complete among them, and no remote server is set.
  await statusBarSays("$(warning) Cove: local (fell back, offline)");
  check(statusItem.tooltip.includes("Fell back: openai unavailable: no remote.base_url set"), statusItem.tooltip);
  check(statusItem.backgroundColor?.id === "statusBarItem.warningBackground", "the fallback is not shown as a warning");
  await commands.get("cove.palette.status")();
  const labels = (picks.at(-1) ?? []).map((item) => item.label);
  for (const label of ["$(circle-slash) openai", "$(check) local", "$(history) Show transcript"]) {
    check(labels.includes(label), `the status bar's details lack ${label}: ${JSON.stringify(labels)}`);
  }
  console.log(`status bar: ok (${statusItem.text})`);

  mark = shown.length;
  await commands.get("cove.palette.cancel")();
  await commands.get("cove.palette.approvePlan")();
  const infos = shownSince(mark, "info");
  check(infos[0] === "Cove: no agent run to cancel", `cove.cancel: ${JSON.stringify(shown.slice(mark))}`);
  check(infos[1] === "Cove: no plan is waiting for a decision", `cove.approvePlan: ${JSON.stringify(shown.slice(mark))}`);
  // The default model cannot run the agent: Ask says why and what to set, and asks no question it would refuse.
  mark = shown.length;
  const asked = inputBoxes.length;
  await commands.get("cove.palette.ask")();
  const warned = shownSince(mark, "warning");
  check(warned.some((m) => m.includes("chat template") && m.includes("[remote]")), `cove.palette.ask: ${JSON.stringify(shown.slice(mark))}`);
  check(inputBoxes.length === asked, "a question was asked for although the agent cannot answer it");
  console.log("palette commands: ok");

  // With a server set, it serves (nothing is asked of it here); the status bar follows the change.
  await changeSetting("remote.baseUrl", "http://127.0.0.1:11434/v1");
  await changeSetting("remote.offline", false);
  await statusBarSays("$(sparkle) Cove: remote");
  check(statusItem.backgroundColor === undefined, "a server that serves is shown as a warning");
  console.log(`status bar after a settings change: ok (${statusItem.text})`);

  // With [routing] complete = ["local"] the language server's own model serves alone (the default, the daemon's
  // model, is tested in tests/lsp/test_daemon_completions.py: this test has no runtime folder of its own).
  process.env.COVE_ROUTING_COMPLETE = '["local"]';
  await commands.get("cove.palette.restart")();
  await statusBarSays("$(sparkle) Cove: local");
  console.log("restart: ok");

  // cove/cursor: where the cursor settles in a document the client has open. A space in the name: the URI is
  // percent-encoded as in didOpen, and the server must find the document by it.
  const file = path.join(project, "my module.py");
  fs.writeFileSync(file, "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n");
  const other = path.join(project, "not open.py");
  fs.writeFileSync(other, "x = 1\n");
  const editor = { document: textDocument(file, "python"), selection: undefined };
  const unopened = { document: textDocument(other, "python"), selection: undefined };
  let before = await cursorsReceived();
  let sentMark = traced.length;
  await moveCursor(unopened, [0]); // the client never sent didOpen for it: nothing goes out
  await documentOpened.fire(editor.document);
  vscode.window.activeTextEditor = editor;
  await sleep(600); // past the debounce: a cove/cursor for the unopened document would have gone out by now
  check(notificationsSince(sentMark, "cove/cursor").length === 0, "cove/cursor went out for a document not open");
  const [opened] = notificationsSince(sentMark, "textDocument/didOpen");
  check(opened?.textDocument.uri.includes("my%20module.py"), `didOpen: ${JSON.stringify(opened)}`);

  sentMark = traced.length;
  await moveCursor(editor, [0, 1, 4, 5]); // four moves in a row: one notification once the cursor rests
  await waitFor("warm.requested to grow after the cursor moved", async () => (await cursorsReceived()) > before);
  await sleep(600);
  const sent = notificationsSince(sentMark, "cove/cursor");
  check(sent.length === 1, `four moves in a row sent ${sent.length} cove/cursor notifications, not one`);
  const expected = { textDocument: { uri: opened.textDocument.uri }, position: { line: 5, character: 4 } };
  check(JSON.stringify(sent[0]) === JSON.stringify(expected), `cove/cursor params: ${JSON.stringify(sent[0])}`);
  const afterMoves = await cursorsReceived();
  check(afterMoves === before + 1, `the server counted ${afterMoves - before} cursors, not one`);

  before = afterMoves;
  sentMark = traced.length;
  await windowStateChanged.fire({ focused: true }); // back to the window: the cursor is where it was, tell again
  await waitFor("warm.requested to grow after the window got focus", async () => (await cursorsReceived()) > before);
  check(notificationsSince(sentMark, "cove/cursor").length === 1, "no cove/cursor when the window got focus");
  before = await cursorsReceived();
  editor.selection = { active: { line: 1, character: 0 }, anchor: { line: 1, character: 0 } };
  await activeEditorChanged.fire(editor); // another editor comes to the front
  await waitFor("warm.requested to grow after the editor changed", async () => (await cursorsReceived()) > before);
  console.log(`cove/cursor: ok (${JSON.stringify(sent[0])}; warm.requested ${await cursorsReceived()})`);

  // A wrong cove.path restarts the client, which fails with a hint.
  mark = shown.length;
  await changeSetting("path", path.join(PACKAGE, "no-such-cove"));
  check(statusItem.text === "Cove: failed", `status with a wrong cove.path: ${statusItem.text}`);
  check(statusItem.backgroundColor?.id === "statusBarItem.errorBackground", "a failed server is not shown as an error");
  check(
    shownSince(mark, "error").some((m) => m.includes("Set cove.path")),
    `no hint for a wrong cove.path: ${JSON.stringify(shown.slice(mark))}`,
  );
  await commands.get("cove.palette.undo")();
  check(shownSince(mark, "warning").length === 1, "a command without a server did not warn");
  const shownBefore = shown.length;
  sentMark = traced.length;
  await moveCursor(editor, [1]); // no server: nothing is sent, and nothing is shown
  await sleep(600);
  check(notificationsSince(sentMark, "cove/cursor").length === 0, "cove/cursor went out without a server");
  check(shown.length === shownBefore, `a cursor move without a server: ${JSON.stringify(shown.slice(shownBefore))}`);
  console.log("wrong cove.path: ok");

  await changeSetting("path", COVE);
  await statusBarSays("$(sparkle) Cove: local");
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
