/**
 * The problems VS Code shows, for the server (`cove/diagnostics`), pure (no `vscode` import, so vitest runs it):
 * every source's diagnostics (linters, type checkers, other language servers) reach an agent run in progress as
 * system reminders, as the Neovim plugin sends them.
 */

/** The notification's method; its params are `{textDocument: {uri}, diagnostics: Diagnostic[]}` (LSP's shape). */
export const DIAGNOSTICS_METHOD = "cove/diagnostics";

/** How long the problems of a document must stay unchanged before they are sent: a linter run updates in bursts. */
export const DIAGNOSTICS_DEBOUNCE_MS = 500;

/**
 * Collects the keys that changed (document URIs) and calls `settled` with each distinct one once the changes
 * stop for `delayMs`: a burst over ten documents sends ten notifications, not one per change.
 */
export class BatchedChanges {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly pending = new Set<string>();

  constructor(
    private readonly delayMs: number,
    private readonly settled: (key: string) => void,
  ) {}

  /** These changed: (re)start the wait. */
  changed(keys: Iterable<string>): void {
    for (const key of keys) {
      this.pending.add(key);
    }
    if (this.pending.size === 0) {
      return;
    }
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  /** Forget what is pending (the client stopped, the extension is deactivated). */
  cancel(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
    }
    this.timer = undefined;
    this.pending.clear();
  }

  private flush(): void {
    this.timer = undefined;
    const keys = [...this.pending];
    this.pending.clear();
    for (const key of keys) {
      this.settled(key);
    }
  }
}
