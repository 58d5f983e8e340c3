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
