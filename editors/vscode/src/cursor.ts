/**
 * Where the cursor settles, for the server (`cove/cursor`), pure (no `vscode` import, so vitest runs it): the
 * server prefills that place while the user is idle, so the first suggestion there comes fast.
 */

/** The notification's method; its params are `{textDocument: {uri}, position: {line, character}}`. */
export const CURSOR_METHOD = "cove/cursor";

/** How long the cursor must rest before the server is told: moves while scrolling or typing are not sent. */
export const CURSOR_DEBOUNCE_MS = 200;

/**
 * Calls `settled` once the moves stop for `delayMs`, with the last thing that moved (the editor, read then,
 * so the place sent is where the cursor is at that moment).
 */
export class Debounced<T> {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private latest: T | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly settled: (value: T) => void,
  ) {}

  /** Something moved: (re)start the wait. */
  moved(value: T): void {
    this.latest = value;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const value = this.latest as T;
      this.latest = undefined;
      this.settled(value);
    }, this.delayMs);
  }

  /** Forget a pending move (the client stopped, the extension is deactivated). */
  cancel(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
    }
    this.timer = undefined;
    this.latest = undefined;
  }
}

/**
 * `cove/yanked`: lines the user left selected, for the server's ring of recently seen code (Neovim sends its yanks):
 * a selection that rests is code the user cares about. Params: `{textDocument: {uri}, range}`.
 */
export const YANKED_METHOD = "cove/yanked";

/** A position as the protocol has it (zero-based line and character). */
export interface Place {
  line: number;
  character: number;
}

/**
 * The range to report for a selection from `anchor` to `active` when it rests: its lines, first to last, or
 * `undefined` when nothing is selected or the selection ends at the very start of its last line (that line is
 * not part of it: selecting whole lines with the mouse or Shift+Down ends there).
 */
export function selectedLines(anchor: Place, active: Place): { start: Place; end: Place } | undefined {
  const [first, last] = anchor.line < active.line || (anchor.line === active.line && anchor.character <= active.character)
    ? [anchor, active]
    : [active, anchor];
  if (first.line === last.line && first.character === last.character) {
    return undefined;
  }
  const lastLine = last.character === 0 && last.line > first.line ? last.line - 1 : last.line;
  return { start: { line: first.line, character: 0 }, end: { line: lastLine, character: 0 } };
}

/**
 * `cove/suggestionReady` from the server, `{textDocument: {uri}}`: the suggestion shown early at that document's cursor
 * (while the user typed on) is whole now. VS Code does not ask again by itself, so the extension does (answered at
 * once, without the model).
 */
export const SUGGESTION_READY_METHOD = "cove/suggestionReady";

/** Whether a `cove/suggestionReady` notification is for the document in the active editor (`activeUri`). */
export function readyFor(activeUri: string | undefined, params: unknown): boolean {
  if (activeUri === undefined || typeof params !== "object" || params === null) {
    return false;
  }
  const document = (params as { textDocument?: unknown }).textDocument;
  if (typeof document !== "object" || document === null) {
    return false;
  }
  return (document as { uri?: unknown }).uri === activeUri;
}
