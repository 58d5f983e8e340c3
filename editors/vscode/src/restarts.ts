/**
 * What happens when `cove lsp` stops without being asked to (killed, crashed), pure (no `vscode` import, so vitest
 * runs it): it is started again, and the user is told, unless it stopped too often lately; then it stays stopped
 * and the message says how to start it.
 */

/** Restarts allowed within `RESTART_WINDOW_MS` before Cove gives up (as vscode-languageclient's own handler). */
export const MAX_RESTARTS = 4;
export const RESTART_WINDOW_MS = 3 * 60 * 1000;

/** What to do about one unexpected stop, and what to tell the user. */
export interface StopDecision {
  restart: boolean;
  message: string;
}

/** Counts the unexpected stops; `stopped(now)` decides each. */
export class RestartPolicy {
  private readonly stops: number[] = [];

  constructor(
    private readonly maxRestarts = MAX_RESTARTS,
    private readonly windowMs = RESTART_WINDOW_MS,
  ) {}

  stopped(now: number): StopDecision {
    this.stops.push(now);
    while (this.stops.length > 0 && now - (this.stops[0] as number) > this.windowMs) {
      this.stops.shift();
    }
    const minutes = Math.round(this.windowMs / 60_000);
    if (this.stops.length <= this.maxRestarts) {
      const times = this.stops.length === 1 ? "" : ` (${this.stops.length} times in ${minutes} minutes)`;
      return {
        restart: true,
        message: `Cove: the server stopped unexpectedly${times} and was restarted. Its log is in the Cove output.`,
      };
    }
    return {
      restart: false,
      message:
        `Cove: the server stopped ${this.stops.length} times in ${minutes} minutes and was not restarted. ` +
        "Its log is in the Cove output; Cove: Restart server starts it again.",
    };
  }

  /** Forget the stops (the user restarted the server). */
  reset(): void {
    this.stops.length = 0;
  }
}

/**
 * Whether a connection error means only that the server is gone (a write to its closed pipe): the connection's close
 * follows and decides about the restart. Counting such errors against the server instead would shut the client
 * down for good when a few writes (a code action request, a cursor notification) race the close after a crash.
 */
export function serverGone(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return code === "EPIPE" || code === "ECONNRESET" || /\bEPIPE\b|\bECONNRESET\b/.test(message);
}
