import { Logger } from '@nestjs/common';

/** What {@link exitOnShutdownSignals} closes: a Nest application (its `close()` runs the shutdown hooks). */
export interface Closable {
  close(signal?: string): Promise<void>;
}

export interface ShutdownOptions {
  /** The app's name, for the log lines. */
  app: string;
  /** SHUTDOWN_GRACE_MS: how long `close()` may take before the process gives up on it and exits 1. */
  graceMs: number;
  signals?: NodeJS.Signals[];
  /** For tests: the process's own by default. */
  exit?: (code: number) => void;
  logger?: Pick<Logger, 'log' | 'error'>;
}

const pendingWork = new Map<symbol, () => string>();

/**
 * Names work a shutdown waits on (a drain, a final sweep), so that a shutdown that runs out of time
 * can say what it was still waiting for. Resolves or rejects as `work` does.
 */
export async function trackShutdownWork<T>(label: string | (() => string), work: Promise<T>): Promise<T> {
  const key = Symbol(typeof label === 'string' ? label : 'shutdown work');
  pendingWork.set(key, typeof label === 'string' ? () => label : label);
  try {
    return await work;
  } finally {
    pendingWork.delete(key);
  }
}

/** What keeps a shutdown busy: tracked work first, then Node's active handles by kind (sockets, timers). */
export function describePendingShutdownWork(): string {
  const tracked = [...pendingWork.values()].map((label) => label());
  const resources = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) resources.set(kind, (resources.get(kind) ?? 0) + 1);
  const handles = [...resources].map(([kind, n]) => `${kind}×${n}`).join(', ');
  return [...tracked, handles ? `active handles: ${handles}` : 'no active handles'].join('; ');
}

const completionSteps: { label: string; run: () => Promise<void> }[] = [];

/**
 * Work for after the app has closed and before the process exits, within the same grace (flushing
 * the spans of the shutdown itself). A failing step is logged; the exit code stays the shutdown's.
 * Returns what removes the step (tests).
 */
export function onShutdownComplete(label: string, run: () => Promise<void>): () => void {
  const step = { label, run };
  completionSteps.push(step);
  return () => {
    const at = completionSteps.indexOf(step);
    if (at >= 0) completionSteps.splice(at, 1);
  };
}

async function runCompletionSteps(logger: Pick<Logger, 'log' | 'error'>): Promise<void> {
  for (const step of completionSteps) {
    await trackShutdownWork(step.label, step.run()).catch((error: Error) => logger.error(`${step.label} failed: ${error.message}`));
  }
}

/**
 * The one way an app stops on SIGTERM/SIGINT: the first signal runs `app.close()` (Nest's shutdown
 * hooks, each app's drain) within `graceMs`, then exits 0; if the grace runs out first it exits 1,
 * logging what was still pending; a second signal exits 1 at once. Replaces Nest's
 * `enableShutdownHooks()`, which re-raises the signal and so never exits 0. Returns what removes the
 * signal listeners (tests).
 */
export function exitOnShutdownSignals(app: Closable, options: ShutdownOptions): () => void {
  const logger = options.logger ?? new Logger(options.app);
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.error(`${signal} again while shutting down: exiting now (still pending: ${describePendingShutdownWork()})`);
      exit(1);
      return;
    }
    stopping = true;
    const started = Date.now();
    logger.log(`${signal}: shutting down (grace ${options.graceMs} ms)`);
    const grace = setTimeout(() => {
      logger.error(`shutdown did not finish within SHUTDOWN_GRACE_MS=${options.graceMs}: exiting 1; still pending: ${describePendingShutdownWork()}`);
      exit(1);
    }, options.graceMs);
    app.close(signal).then(
      async () => {
        logger.log(`shut down in ${Date.now() - started} ms`);
        await runCompletionSteps(logger);
        clearTimeout(grace);
        exit(0);
      },
      async (error: Error) => {
        logger.error(`shutdown failed after ${Date.now() - started} ms: ${error.stack ?? error.message}`);
        await runCompletionSteps(logger);
        clearTimeout(grace);
        exit(1);
      },
    );
  };
  const signals = options.signals ?? (['SIGTERM', 'SIGINT'] as NodeJS.Signals[]);
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
