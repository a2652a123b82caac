/**
 * "At most one log line per key per interval": a flood (a dead backend under load, a stream of
 * forged or malformed messages, a database outage) must show in the log without flooding it. The
 * counters carry the exact numbers; the line says how many were folded into it.
 */
export class LogThrottle {
  private readonly entries = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    /** Keys are forgotten once quiet for an interval, when more than this many are held. */
    private readonly maxKeys = 1000,
  ) {}

  /**
   * `undefined`: stay quiet (counted for the next line). A number: log now; it is how many were
   * suppressed for this key since its last line.
   */
  take(key = '', now = Date.now()): number | undefined {
    const entry = this.entries.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    this.entries.set(key, { at: now, suppressed: 0 });
    if (this.entries.size > this.maxKeys) {
      for (const [k, e] of this.entries) if (now - e.at >= this.intervalMs) this.entries.delete(k);
    }
    return entry?.suppressed ?? 0;
  }
}
