import cluster, { Worker } from 'node:cluster';
import { Logger } from '@nestjs/common';

/** A worker that dies this soon after its fork failed to start: the primary stops instead of forking it again and again. */
const START_FAILURE_MS = 10_000;

export interface PrimaryOptions {
  workers: number;
  /** SHUTDOWN_GRACE_MS: each worker drains within it; the primary waits that long and a margin, then kills what is left. */
  graceMs: number;
}

/**
 * The cluster's primary (ROUTER_WORKERS > 1): forks the workers, which share the port (the primary
 * hands each new connection to one of them, round-robin), and serves nothing itself. Each worker is a
 * whole router: its own NATS connection, routing table, balancer and metrics (/metrics and /health
 * answer for the worker the connection reached).
 *
 * The first worker is forked alone and the others once it listens, so a start failure shows once.
 * SIGTERM or SIGINT: forwarded once to every worker as SIGTERM (each drains as a single router does);
 * the primary exits 0 once they have all exited, 1 if one had to be killed after the grace. A worker
 * that dies on its own is replaced, unless it died within 10 s of its start (a start failure: the
 * primary stops them all and exits 1 rather than fork in a loop).
 */
export function runPrimary({ workers, graceMs }: PrimaryOptions, logger = new Logger('llm-router')): void {
  let stopping = false;
  let exitCode = 0;
  const started = new Map<Worker, number>();
  const fork = () => started.set(cluster.fork(), Date.now());

  const stopAll = (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${reason}: stopping ${cluster.workers ? Object.keys(cluster.workers).length : 0} worker(s)`);
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    // A worker exits 1 on its own when its grace runs out; this only covers one that hangs past it.
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) {
        exitCode = 1;
        logger.error(`worker ${worker?.process.pid} still running ${graceMs + 2000} ms after SIGTERM: killing it`);
        worker?.process.kill('SIGKILL');
      }
    }, graceMs + 2000).unref();
  };

  cluster.on('exit', (worker, code, signal) => {
    const forkedAt = started.get(worker) ?? 0;
    started.delete(worker);
    if (stopping) {
      if (code !== 0) exitCode = 1;
      if (!Object.keys(cluster.workers ?? {}).length) process.exit(exitCode);
      return;
    }
    if (Date.now() - forkedAt < START_FAILURE_MS) {
      exitCode = code || 1;
      logger.error(`worker ${worker.process.pid} exited (${signal ?? code}) ${Date.now() - forkedAt} ms after its start: stopping the router`);
      stopAll('start failure');
      if (!Object.keys(cluster.workers ?? {}).length) process.exit(exitCode);
      return;
    }
    logger.error(`worker ${worker.process.pid} exited (${signal ?? code}): starting another`);
    fork();
  });
  // SIGINT from a terminal reaches the workers too; they ignore it (see main.ts) and wait for this SIGTERM.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stopAll(signal));
  // One worker first, the rest once it listens: a start that fails (NATS refused, no credentials)
  // fails once, with one line and that worker's exit code, instead of once per worker.
  fork();
  cluster.once('listening', () => {
    if (stopping) return;
    for (let i = 1; i < workers; i++) fork();
    logger.log(`primary ${process.pid}: ${workers} workers`);
  });
}
