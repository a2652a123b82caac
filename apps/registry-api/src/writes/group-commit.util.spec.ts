import { GroupCommit, Outcome } from './group-commit.util';

interface Item {
  key: string;
  n: number;
}

/** A commit function the test ends by hand, batch by batch. */
function harness(options = { maxBatch: 100, maxInFlight: 1 }) {
  const batches: { items: Item[]; end: (outcomes?: Outcome<number>[]) => void; fail: (error: Error) => void }[] = [];
  const group = new GroupCommit<Item, number>(
    (item) => item.key,
    (items) =>
      new Promise((resolve, reject) => {
        batches.push({ items, end: (outcomes) => resolve(outcomes ?? items.map((i) => ({ ok: true, value: i.n }))), fail: reject });
      }),
    options,
  );
  return { group, batches };
}
// A few turns of the event loop: the end of a batch schedules the next with setImmediate after its promise settles.
const tick = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};
const keysOf = (items: Item[]) => items.map((i) => `${i.key}${i.n}`);

describe('GroupCommit', () => {
  it('sends the first item of an idle queue at once, and groups what arrives meanwhile into the next batch', async () => {
    const { group, batches } = harness();
    const first = group.submit({ key: 'a', n: 1 });
    await tick();
    expect(batches.map((b) => keysOf(b.items))).toEqual([['a1']]);

    const later = [group.submit({ key: 'b', n: 2 }), group.submit({ key: 'c', n: 3 }), group.submit({ key: 'd', n: 4 })];
    await tick();
    expect(batches).toHaveLength(1); // one in flight at most
    batches[0].end();
    expect(await first).toBe(1);
    await tick();
    expect(batches.map((b) => keysOf(b.items))).toEqual([['a1'], ['b2', 'c3', 'd4']]);
    batches[1].end();
    expect(await Promise.all(later)).toEqual([2, 3, 4]);
  });

  it('never puts two items of one key in one batch or in two running batches, and keeps their order', async () => {
    const { group, batches } = harness({ maxBatch: 100, maxInFlight: 3 });
    const all = [
      group.submit({ key: 'x', n: 1 }),
      group.submit({ key: 'y', n: 2 }),
      group.submit({ key: 'x', n: 3 }),
      group.submit({ key: 'z', n: 4 }),
      group.submit({ key: 'x', n: 5 }),
    ];
    await tick();
    // x3 and x5 wait for the batch holding x1, although two more batches could run.
    expect(batches.map((b) => keysOf(b.items))).toEqual([['x1', 'y2', 'z4']]);
    batches[0].end();
    await tick();
    expect(batches.map((b) => keysOf(b.items)).slice(1)).toEqual([['x3']]);
    batches[1].end();
    await tick();
    expect(batches.map((b) => keysOf(b.items)).slice(2)).toEqual([['x5']]);
    batches[2].end();
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
  });

  it('runs up to maxInFlight batches of up to maxBatch items at once', async () => {
    const { group, batches } = harness({ maxBatch: 2, maxInFlight: 2 });
    const all = ['a', 'b', 'c', 'd', 'e'].map((key, n) => group.submit({ key, n }));
    await tick();
    expect(batches.map((b) => keysOf(b.items))).toEqual([['a0', 'b1'], ['c2', 'd3']]);
    batches[1].end();
    await tick();
    expect(batches.map((b) => keysOf(b.items)).slice(2)).toEqual([['e4']]);
    batches[0].end();
    batches[2].end();
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4]);
  });

  it("answers each item with its own outcome; a commit that throws fails its batch only", async () => {
    const { group, batches } = harness();
    const a = group.submit({ key: 'a', n: 1 });
    await tick();
    const b = group.submit({ key: 'b', n: 2 });
    const c = group.submit({ key: 'c', n: 3 });
    batches[0].fail(new Error('connection lost'));
    await expect(a).rejects.toThrow('connection lost');
    await tick();
    batches[1].end([{ ok: false, error: new Error('not found') }, { ok: true, value: 30 }]);
    await expect(b).rejects.toThrow('not found');
    expect(await c).toBe(30);
  });
});
