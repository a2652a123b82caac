/** One item's outcome in a committed batch: its own value or its own error. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions {
  /** Items per batch at most. */
  maxBatch: number;
  /** Batches committing at once at most (each on its own connection). */
  maxInFlight: number;
}

interface Pending<C, R> {
  item: C;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: items submitted while earlier batches are committing wait and go together in the
 * next batch, so a burst of N writes costs a few transactions instead of N. No timer: when fewer
 * than `maxInFlight` batches are running, a batch leaves as soon as the current I/O callbacks are
 * done (setImmediate), so the first write of an idle system is not delayed. Two items with the same
 * key never share a batch or run in two batches at once: the later one waits for the batch holding
 * the earlier, which keeps their arrival order (batches on different connections may commit in any order).
 * `commit` answers every item of a batch; if it throws, every item of the batch gets its error.
 */
export class GroupCommit<C, R> {
  private queue: Pending<C, R>[] = [];
  private inFlight = 0;
  private readonly busyKeys = new Set<string>();
  private scheduled = false;

  constructor(
    private readonly keyOf: (item: C) => string,
    private readonly commit: (items: C[]) => Promise<Outcome<R>[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  /** Items waiting for a batch (not those committing). */
  get waiting(): number {
    return this.queue.length;
  }

  submit(item: C): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || !this.queue.length) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length) {
      const batch: Pending<C, R>[] = [];
      const keys = new Set<string>();
      const rest: Pending<C, R>[] = [];
      for (const pending of this.queue) {
        const key = this.keyOf(pending.item);
        // A key already taken (here or by a running batch) keeps this item, and every later one of that key, waiting.
        if (batch.length < this.options.maxBatch && !keys.has(key) && !this.busyKeys.has(key)) {
          batch.push(pending);
          keys.add(key);
        } else {
          rest.push(pending);
        }
      }
      if (!batch.length) return; // every waiting key is in a running batch: its end schedules the next
      this.queue = rest;
      void this.run(batch, keys);
    }
  }

  private async run(batch: Pending<C, R>[], keys: Set<string>): Promise<void> {
    this.inFlight++;
    for (const key of keys) this.busyKeys.add(key);
    try {
      const outcomes = await this.commit(batch.map((p) => p.item));
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (!outcome) pending.reject(new Error('group commit: no outcome for an item'));
        else if (outcome.ok) pending.resolve(outcome.value);
        else pending.reject(outcome.error);
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.inFlight--;
      for (const key of keys) this.busyKeys.delete(key);
      this.schedule();
    }
  }
}
