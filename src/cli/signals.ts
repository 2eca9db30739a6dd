/**
 * Graceful shutdown on SIGTERM/SIGINT for long-running commands: the first signal runs `stop`
 * (a staged, deadline-bound stop), a second one runs `force`. Listeners are removed when the
 * returned function is called, so a finished command leaves nothing behind.
 * @module
 */

/** What to do on a shutdown signal. */
export interface ShutdownHandlers {
  /** First SIGTERM/SIGINT: stop gracefully (finish or hand back work under a deadline). */
  stop: (signal: NodeJS.Signals) => Promise<void>;
  /** Second signal while `stop` runs: stop now. */
  force: (signal: NodeJS.Signals) => Promise<void>;
}

/** Installs the handlers; returns the function that removes them. */
export function onShutdownSignals(handlers: ShutdownHandlers): () => void {
  let count = 0;
  const listener = (signal: NodeJS.Signals): void => {
    count++;
    const run = count === 1 ? handlers.stop : handlers.force;
    if (count > 2) return;
    void run(signal);
  };
  process.on('SIGTERM', listener);
  process.on('SIGINT', listener);
  return () => {
    process.off('SIGTERM', listener);
    process.off('SIGINT', listener);
  };
}
