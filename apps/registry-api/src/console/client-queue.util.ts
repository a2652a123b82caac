/** Where a client's messages go: a socket-like sink (`write` false = its buffer is full until 'drain'). */
export interface ClientSink {
  write(chunk: string): boolean;
  end(chunk?: string): void;
  once(event: 'drain', listener: () => void): unknown;
}

export type QueueOutcome = 'written' | 'queued' | 'overflow' | 'closed';

/**
 * One live-feed client's outgoing messages, bounded. While the socket takes them they are written
 * through; once it pushes back they wait here, and a client that falls `maxQueued` messages behind is
 * ended with one last message (`resync`) instead of holding registry-api's heap: it reconnects and
 * starts again from a snapshot, which says the same as everything it missed.
 */
export class ClientQueue {
  private readonly pending: string[] = [];
  private waiting = false;
  private closed = false;

  constructor(
    private readonly sink: ClientSink,
    private readonly maxQueued: number,
    private readonly farewell: string,
    private readonly onOverflow: () => void = () => undefined,
  ) {}

  get queued(): number {
    return this.pending.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  push(chunk: string): QueueOutcome {
    if (this.closed) return 'closed';
    if (this.waiting) {
      if (this.pending.length >= this.maxQueued) {
        this.overflow();
        return 'overflow';
      }
      this.pending.push(chunk);
      return 'queued';
    }
    if (!this.sink.write(chunk)) this.waitForDrain();
    return 'written';
  }

  /** Ends the stream (server shutdown): what is queued is dropped. */
  end(): void {
    if (this.closed) return;
    this.close();
    this.sink.end();
  }

  /** Stops accepting messages (the client went away); what is queued is dropped. */
  close(): void {
    this.closed = true;
    this.pending.length = 0;
  }

  private waitForDrain(): void {
    this.waiting = true;
    this.sink.once('drain', () => {
      this.waiting = false;
      if (this.closed) return;
      while (this.pending.length) {
        const next = this.pending.shift() as string;
        if (!this.sink.write(next)) {
          this.waitForDrain();
          return;
        }
      }
    });
  }

  private overflow(): void {
    this.close();
    this.sink.end(this.farewell);
    this.onOverflow();
  }
}
