/** An item a {@link DueQueue} can hold: its due time and its place in the heap (-1 when not queued). */
export interface DueItem {
  dueAt: number;
  heapIndex: number;
}

/**
 * A binary min-heap of items by due time, each item knowing its own index, so rescheduling or removing
 * one is O(log n) without searching: the prober's ticks take only what is due (O(due · log n)) instead of
 * walking every instance.
 */
export class DueQueue<T extends DueItem> {
  private readonly heap: T[] = [];

  get size(): number {
    return this.heap.length;
  }

  has(item: T): boolean {
    return item.heapIndex >= 0 && this.heap[item.heapIndex] === item;
  }

  /** Queues `item` at `dueAt`, or moves it there if it is queued already. */
  schedule(item: T, dueAt: number): void {
    if (!this.has(item)) {
      item.dueAt = dueAt;
      item.heapIndex = this.heap.length;
      this.heap.push(item);
      this.up(item.heapIndex);
      return;
    }
    const earlier = dueAt < item.dueAt;
    item.dueAt = dueAt;
    if (earlier) this.up(item.heapIndex);
    else this.down(item.heapIndex);
  }

  remove(item: T): void {
    if (!this.has(item)) return;
    const index = item.heapIndex;
    const last = this.heap.pop() as T;
    item.heapIndex = -1;
    if (last === item) return;
    this.heap[index] = last;
    last.heapIndex = index;
    this.down(index);
    this.up(last.heapIndex);
  }

  peek(): T | undefined {
    return this.heap[0];
  }

  /** The earliest item if it is due at `now` or before (removed from the queue), else undefined. */
  popDue(now: number): T | undefined {
    const first = this.heap[0];
    if (!first || first.dueAt > now) return undefined;
    this.remove(first);
    return first;
  }

  private up(index: number): void {
    const heap = this.heap;
    const item = heap[index];
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].dueAt <= item.dueAt) break;
      heap[index] = heap[parent];
      heap[index].heapIndex = index;
      index = parent;
    }
    heap[index] = item;
    item.heapIndex = index;
  }

  private down(index: number): void {
    const heap = this.heap;
    const item = heap[index];
    const n = heap.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && heap[right].dueAt < heap[left].dueAt ? right : left;
      if (heap[child].dueAt >= item.dueAt) break;
      heap[index] = heap[child];
      heap[index].heapIndex = index;
      index = child;
    }
    heap[index] = item;
    item.heapIndex = index;
  }
}
