import { EventEmitter } from 'node:events';
import { ClientQueue, ClientSink } from './client-queue.util';

/** A socket whose buffer takes `room` writes, then pushes back until drain(). */
class FakeSink extends EventEmitter implements ClientSink {
  written: string[] = [];
  ended?: string;
  constructor(public room: number) {
    super();
  }
  write(chunk: string): boolean {
    this.written.push(chunk);
    return this.written.length < this.room;
  }
  end(chunk?: string): void {
    this.ended = chunk ?? '';
  }
  drain(room: number): void {
    this.room = this.written.length + room;
    this.emit('drain');
  }
}

describe('ClientQueue (one live-feed client, bounded)', () => {
  it('writes through while the socket takes messages', () => {
    const sink = new FakeSink(100);
    const queue = new ClientQueue(sink, 3, 'bye');
    expect(['a', 'b', 'c'].map((m) => queue.push(m))).toEqual(['written', 'written', 'written']);
    expect(sink.written).toEqual(['a', 'b', 'c']);
    expect(queue.queued).toBe(0);
  });

  it('holds messages while the socket pushes back and sends them in order on drain', () => {
    const sink = new FakeSink(1);
    const queue = new ClientQueue(sink, 3, 'bye');
    expect(queue.push('a')).toBe('written');
    expect(queue.push('b')).toBe('queued');
    expect(queue.push('c')).toBe('queued');
    expect(sink.written).toEqual(['a']);
    sink.drain(100);
    expect(sink.written).toEqual(['a', 'b', 'c']);
    expect(queue.queued).toBe(0);
    expect(queue.push('d')).toBe('written');
  });

  it('ends a client that falls maxQueued messages behind with the farewell, once, and accepts nothing after', () => {
    const sink = new FakeSink(1);
    const overflowed = jest.fn();
    const queue = new ClientQueue(sink, 2, 'event: resync\n\n', overflowed);
    queue.push('a');
    expect(queue.push('b')).toBe('queued');
    expect(queue.push('c')).toBe('queued');
    expect(queue.push('d')).toBe('overflow');
    expect(sink.ended).toBe('event: resync\n\n');
    expect(overflowed).toHaveBeenCalledTimes(1);
    expect(queue.push('e')).toBe('closed');
    expect(queue.queued).toBe(0);
    sink.drain(100);
    expect(sink.written).toEqual(['a']);
  });

  it('pushes back again when the socket fills while the queue is drained', () => {
    const sink = new FakeSink(1);
    const queue = new ClientQueue(sink, 10, 'bye');
    queue.push('a');
    queue.push('b');
    queue.push('c');
    queue.push('d');
    sink.drain(1);
    expect(sink.written).toEqual(['a', 'b']);
    expect(queue.queued).toBe(2);
    sink.drain(100);
    expect(sink.written).toEqual(['a', 'b', 'c', 'd']);
  });
});
