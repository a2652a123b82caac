import { DueItem, DueQueue } from './due-queue.util';

interface Item extends DueItem {
  id: number;
}

const item = (id: number): Item => ({ id, dueAt: 0, heapIndex: -1 });

describe('DueQueue', () => {
  it('pops only what is due, earliest first, after random schedules, moves and removals', () => {
    const queue = new DueQueue<Item>();
    const items = Array.from({ length: 2000 }, (_, i) => item(i));
    const expected = new Map<number, number>();
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (const it of items) {
      const at = Math.floor(random() * 10_000);
      queue.schedule(it, at);
      expected.set(it.id, at);
    }
    for (let i = 0; i < 3000; i++) {
      const it = items[Math.floor(random() * items.length)];
      if (random() < 0.2) {
        queue.remove(it);
        expected.delete(it.id);
      } else {
        const at = Math.floor(random() * 10_000);
        queue.schedule(it, at);
        expected.set(it.id, at);
      }
    }
    expect(queue.size).toBe(expected.size);

    const popped: [number, number][] = [];
    for (let now = 0; now <= 10_000; now += 500) {
      for (let next = queue.popDue(now); next; next = queue.popDue(now)) {
        expect(next.dueAt).toBeLessThanOrEqual(now);
        expect(next.heapIndex).toBe(-1);
        popped.push([next.id, next.dueAt]);
      }
      expect(queue.peek()?.dueAt ?? Infinity).toBeGreaterThan(now);
    }
    const want = [...expected].sort((a, b) => a[1] - b[1]);
    expect(popped.map(([, at]) => at)).toEqual(want.map(([, at]) => at));
    expect(new Map(popped)).toEqual(expected);
    expect(queue.size).toBe(0);
  });

  it('ignores removing an item it does not hold, and queues an item again after it was popped', () => {
    const queue = new DueQueue<Item>();
    const a = item(1);
    queue.remove(a);
    queue.schedule(a, 5);
    expect(queue.popDue(4)).toBeUndefined();
    expect(queue.popDue(5)).toBe(a);
    expect(queue.has(a)).toBe(false);
    queue.schedule(a, 7);
    expect(queue.has(a)).toBe(true);
    expect(queue.popDue(10)).toBe(a);
  });
});
