import { BaseAppEnv } from './app-env.config';
import { ConfigValidationError, loadConfig } from './env.config';
import { describePendingShutdownWork, exitOnShutdownSignals, onShutdownComplete, trackShutdownWork } from './shutdown.util';

/** A signal no one sends to a test worker: `process.emit` runs the listeners without signalling. */
const SIGNAL: NodeJS.Signals = 'SIGUSR2';

function harness(close: () => Promise<void>, graceMs = 1000) {
  const exits: number[] = [];
  const logs: string[] = [];
  const errors: string[] = [];
  const closes: (string | undefined)[] = [];
  const remove = exitOnShutdownSignals(
    { close: (signal) => (closes.push(signal), close()) },
    { app: 'test-app', graceMs, signals: [SIGNAL], exit: (code) => exits.push(code), logger: { log: (m: string) => logs.push(m), error: (m: string) => errors.push(m) } },
  );
  return { exits, logs, errors, closes, remove };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('exitOnShutdownSignals', () => {
  let remove: (() => void) | undefined;
  afterEach(() => {
    remove?.();
    jest.useRealTimers();
  });

  it('closes the app once and exits 0 when the close completes, logging its start and end', async () => {
    const h = harness(() => Promise.resolve());
    remove = h.remove;
    process.emit(SIGNAL, SIGNAL);
    await flush();
    expect(h.closes).toEqual([SIGNAL]);
    expect(h.exits).toEqual([0]);
    expect(h.logs).toEqual([expect.stringContaining(`${SIGNAL}: shutting down`), expect.stringMatching(/^shut down in \d+ ms$/)]);
    expect(h.errors).toEqual([]);
  });

  it('runs the completion steps (span flush) after the close and before the exit, and still exits 0 when one fails', async () => {
    const order: string[] = [];
    const h = harness(async () => void order.push('close'));
    remove = h.remove;
    const removeFlush = onShutdownComplete('flush spans', async () => void order.push(`flush (exits so far: ${h.exits.length})`));
    const removeFailing = onShutdownComplete('failing step', () => Promise.reject(new Error('collector gone')));
    try {
      process.emit(SIGNAL, SIGNAL);
      await flush();
      await flush();
      expect(order).toEqual(['close', 'flush (exits so far: 0)']);
      expect(h.exits).toEqual([0]);
      expect(h.errors).toEqual(['failing step failed: collector gone']);
    } finally {
      removeFlush();
      removeFailing();
    }
  });

  it('exits 1 when the grace runs out, naming the work still pending', async () => {
    jest.useFakeTimers();
    let finish!: () => void;
    const sweep = new Promise<void>((resolve) => (finish = resolve));
    const h = harness(() => trackShutdownWork('final outbox sweep', sweep), 500);
    remove = h.remove;
    process.emit(SIGNAL, SIGNAL);
    jest.advanceTimersByTime(499);
    expect(h.exits).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(h.exits).toEqual([1]);
    expect(h.errors).toEqual([expect.stringMatching(/SHUTDOWN_GRACE_MS=500.*still pending: final outbox sweep; /)]);
    finish();
  });

  it('exits 1 at once on a second signal', async () => {
    const h = harness(() => new Promise(() => undefined));
    remove = h.remove;
    process.emit(SIGNAL, SIGNAL);
    process.emit(SIGNAL, SIGNAL);
    expect(h.closes).toHaveLength(1);
    expect(h.exits).toEqual([1]);
    expect(h.errors).toEqual([expect.stringContaining('again while shutting down')]);
  });

  it('exits 1 when a shutdown hook throws', async () => {
    const h = harness(() => Promise.reject(new Error('pool would not close')));
    remove = h.remove;
    process.emit(SIGNAL, SIGNAL);
    await flush();
    expect(h.exits).toEqual([1]);
    expect(h.errors).toEqual([expect.stringContaining('pool would not close')]);
  });
});

describe('trackShutdownWork', () => {
  it('names the work while it runs, passes its result through and forgets it once it settles', async () => {
    let finish!: (value: number) => void;
    const work = trackShutdownWork(() => 'draining 3 request(s)', new Promise<number>((resolve) => (finish = resolve)));
    expect(describePendingShutdownWork()).toMatch(/^draining 3 request\(s\); /);
    finish(7);
    await expect(work).resolves.toBe(7);
    await expect(trackShutdownWork('failing', Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(describePendingShutdownWork()).not.toMatch(/draining|failing/);
  });
});

describe('SHUTDOWN_GRACE_MS', () => {
  it('defaults to 10 s, 25 s in production, and takes a valid value', () => {
    expect(loadConfig(BaseAppEnv, {}).shutdownGraceMs).toBe(10_000);
    expect(loadConfig(BaseAppEnv, { NODE_ENV: 'production' }).shutdownGraceMs).toBe(25_000);
    expect(loadConfig(BaseAppEnv, { NODE_ENV: 'production', SHUTDOWN_GRACE_MS: '3000' }).shutdownGraceMs).toBe(3000);
  });

  it('refuses a value that is not a whole number of milliseconds in range, naming the variable', () => {
    for (const bad of ['soon', '50', '600001', '1.5']) {
      expect(() => loadConfig(BaseAppEnv, { SHUTDOWN_GRACE_MS: bad })).toThrow(ConfigValidationError);
      expect(() => loadConfig(BaseAppEnv, { SHUTDOWN_GRACE_MS: bad })).toThrow(/SHUTDOWN_GRACE_MS/);
    }
  });
});
