"""Imported definitions for JavaScript and TypeScript over real files: the import forms, Node's and TypeScript's
resolution of relative specifiers, and what reaches a completion's context."""

from __future__ import annotations

import os
from pathlib import Path

from cove.server.context.script_imports import Binding, parse_script_imports, resolve_specifier, statement_lines
from cove.server.context.workspace_context import WorkspaceContext

CLIENT_TS = """import { EventEmitter } from "events";

/** Sends requests. */
export class HttpClient {
  constructor(private readonly base: string) {}

  async get(path: string): Promise<Response> {
    return fetch(this.base + path);
  }

  async post(path: string, body: unknown): Promise<Response> {
    return fetch(this.base + path, { method: "POST", body: JSON.stringify(body) });
  }
}

export function retryDelays(base: number, attempts: number): number[] {
  return Array.from({ length: attempts }, (_, n) => base * 2 ** n);
}

export interface Options {
  timeoutMs: number;
}

function hidden(): void {}
"""

MAIN_TS = """import { HttpClient, retryDelays as delays } from "./net/client.js";
import * as models from "./models";
import type { Options } from "./net/client";
import { render } from "react-dom";

export async function load(options: Options): Promise<void> {
  const client = new HttpClient("https://example.test");
  for (const wait of delays(100, 3)) {
    const user = models.parseUser(await client.
"""


def test_every_import_form_is_parsed() -> None:
    text = (
        'import Server, { Codec, encode as enc } from "./server";\n'
        "import * as ns from '../ns';\n"
        'export { Frame } from "./frame";\n'
        'import {\n  type Token,\n  Lexer,\n} from "./lexer";\n'
        'const client_1 = require("./client");\n'
        'const { Emitter, Disposable: Dispose } = require("./events");\n'
        'import "./side-effects";\n'
    )
    assert parse_script_imports(text) == [
        Binding("./server", "Codec", "Codec"),
        Binding("./server", "encode", "enc"),
        Binding("./server", None, "Server"),
        Binding("../ns", None, "ns"),
        Binding("./frame", "Frame", "Frame"),
        Binding("./lexer", "Token", "Token"),
        Binding("./lexer", "Lexer", "Lexer"),
        Binding("./client", None, "client_1"),
        Binding("./events", "Emitter", "Emitter"),
        Binding("./events", "Disposable", "Dispose"),
    ]


def test_specifiers_resolve_as_node_and_typescript_do(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "src" / "net").mkdir(parents=True)
    (root / "src" / "models").mkdir()
    (root / "src" / "net" / "client.ts").write_text(CLIENT_TS)
    (root / "src" / "models" / "index.ts").write_text("export function parseUser(raw: string) {}\n")
    (root / "src" / "legacy.js").write_text("module.exports = {};\n")
    (tmp_path / "outside.ts").write_text("export const secret = 1;\n")
    main = root / "src" / "main.ts"
    assert resolve_specifier("./net/client.js", main, root) == root / "src" / "net" / "client.ts"  # ESM style
    assert resolve_specifier("./net/client", main, root) == root / "src" / "net" / "client.ts"
    assert resolve_specifier("./models", main, root) == root / "src" / "models" / "index.ts"
    assert resolve_specifier("./legacy", main, root) == root / "src" / "legacy.js"
    assert resolve_specifier("react-dom", main, root) is None  # a package: not the project's code
    assert resolve_specifier("../../outside", main, root) is None  # above the workspace
    assert resolve_specifier("./missing", main, root) is None


def test_imported_definitions_reach_the_context_of_a_typescript_document(tmp_path: Path) -> None:
    """The class the code uses with its members' first lines, the aliased function, a namespace's function the code
    calls as an attribute; not a definition the module keeps to itself, nor anything of a package."""
    root = tmp_path / "app"
    (root / "net").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "net" / "client.ts").write_text(CLIENT_TS)
    (root / "models" / "index.ts").write_text(
        "export function parseUser(raw: string): User {\n  return JSON.parse(raw);\n}\n\n"
        "export function parseGroup(raw: string) {}\n"
    )
    context = WorkspaceContext(root, sources=frozenset({"imports"}))
    uri = (root / "main.ts").as_uri()
    gathered = context.gather(uri, MAIN_TS, 0, 2000, cursor=len(MAIN_TS))
    assert gathered.startswith("// net/client.ts\nexport class HttpClient {\n")
    assert "  async get(path: string): Promise<Response> {" in gathered
    assert "export function retryDelays(base: number, attempts: number): number[] {" in gathered
    assert "// models/index.ts\nexport function parseUser(raw: string): User {" in gathered
    assert "hidden" not in gathered and "render" not in gathered
    assert context.gather(uri, MAIN_TS + "g", 0, 2000, cursor=len(MAIN_TS) + 1) == gathered  # stable while typing


def test_compiled_commonjs_reaches_definitions_through_the_module_binding(tmp_path: Path) -> None:
    """What TypeScript compiles to (`const x_1 = require("./x")`, `x_1.Name`): the definitions the code uses."""
    (tmp_path / "messages.js").write_text(
        '"use strict";\nclass RequestType {\n    constructor(method) {\n        this.method = method;\n    }\n}\n'
        "exports.RequestType = RequestType;\nfunction isRequest(message) {\n    return true;\n}\n"
    )
    text = 'const messages_1 = require("./messages");\nconst req = new messages_1.RequestType("x");\nif (messages_1.'
    context = WorkspaceContext(tmp_path, sources=frozenset({"imports"}))
    gathered = context.gather((tmp_path / "main.js").as_uri(), text, 0, 2000, cursor=len(text))
    assert gathered.startswith("// messages.js\nclass RequestType {\n    constructor(method) {")
    assert "function isRequest(message) {" in gathered


def test_a_javascript_file_imports_javascript_before_declarations(tmp_path: Path) -> None:
    """Beside a compiled package's `.js` lie its `.d.ts`: a JavaScript importer gets the code Node loads, a
    TypeScript one the declarations TypeScript reads."""
    (tmp_path / "messages.js").write_text("class RequestType {}\nexports.RequestType = RequestType;\n")
    (tmp_path / "messages.d.ts").write_text("export declare class RequestType {}\n")
    assert resolve_specifier("./messages", tmp_path / "main.js", tmp_path) == tmp_path / "messages.js"
    assert resolve_specifier("./messages", tmp_path / "main.ts", tmp_path) == tmp_path / "messages.d.ts"


def test_tsconfig_paths_and_base_url_map_bare_specifiers(tmp_path: Path) -> None:
    """`@/components/button` through `paths` (relative to `baseUrl`), `lib/format` through `baseUrl` alone, in a
    tsconfig.json with comments and trailing commas; a package stays a package; a change to the file is read."""
    root = tmp_path / "app"
    (root / "src" / "components").mkdir(parents=True)
    (root / "src" / "lib").mkdir()
    (root / "src" / "components" / "button.tsx").write_text("export function Button(props: Props) {}\n")
    (root / "src" / "lib" / "format.ts").write_text("export function formatPrice(cents: number): string {}\n")
    (root / "tsconfig.json").write_text(
        '{\n  // the compiler\'s options\n  "compilerOptions": {\n    "baseUrl": "./src", /* relative */\n'
        '    "paths": {"@/*": ["./*"], "#button": ["components/button.tsx"],},\n  },\n}\n'
    )
    main = root / "src" / "pages" / "home.tsx"
    main.parent.mkdir()
    assert resolve_specifier("@/components/button", main, root) == root / "src" / "components" / "button.tsx"
    assert resolve_specifier("#button", main, root) == root / "src" / "components" / "button.tsx"
    assert resolve_specifier("lib/format", main, root) == root / "src" / "lib" / "format.ts"
    assert resolve_specifier("react", main, root) is None
    (root / "tsconfig.json").write_text('{"compilerOptions": {"paths": {"~/*": ["src/*"]}}}')
    os.utime(root / "tsconfig.json", (1, 1))  # a different modification time, whatever the clock's resolution
    assert resolve_specifier("~/lib/format", main, root) == root / "src" / "lib" / "format.ts"
    assert resolve_specifier("lib/format", main, root) is None  # no baseUrl now
    text = 'import { formatPrice } from "~/lib/format";\n\nexport const label = formatPrice('
    gathered = WorkspaceContext(root, sources=frozenset({"imports"})).gather(main.as_uri(), text, 0, 2000, len(text))
    assert gathered == "// src/lib/format.ts\nexport function formatPrice(cents: number): string {}\n"


def test_the_import_lines_are_found_without_a_full_scan_and_stay_while_typing_elsewhere() -> None:
    """The statements' lines are the cache key of what the imports bind: a clause over several lines is whole, a
    function's `export` and a comment's "important" are not statements, and typing in a body leaves the key."""
    text = (
        'import Server, { Codec } from "./server";\nimport {\n  Frame,\n  encode as enc,\n} from "./frame";\n'
        'const { Emitter } = require("./events");\n\n// an important note\nexport function start() {\n  return 1;\n}\n'
        'export { Token } from "./lexer";\n'
    )
    lines = statement_lines(text)
    assert lines == (
        'import Server, { Codec } from "./server";',
        'import {\n  Frame,\n  encode as enc,\n} from "./frame";',
        'const { Emitter } = require("./events");',
        'export { Token } from "./lexer";',
    )
    assert parse_script_imports("\n".join(lines)) == parse_script_imports(text)
    assert statement_lines(text.replace("return 1;", "return 1 + 2;")) == lines
