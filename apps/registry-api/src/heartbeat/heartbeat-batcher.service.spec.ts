import type { HeartbeatWrite, RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { HeartbeatBatcherService } from './heartbeat-batcher.service';

class FakeRepository {
  batches: HeartbeatWrite[][] = [];
  known = new Set(['a', 'b']);
  fail = false;
  private wrote?: () => void;
  /** Resolves at the next batch written, whoever started the write. */
  nextWrite(): Promise<void> {
    return new Promise((resolve) => (this.wrote = resolve));
  }
  async applyHeartbeats(batch: HeartbeatWrite[]): Promise<Set<string>> {
    if (this.fail) throw new Error('database down');
    this.batches.push(batch.map((b) => ({ ...b, load: { ...b.load } })));
    this.wrote?.();
    return new Set(batch.map((b) => b.serviceId).filter((id) => this.known.has(id)));
  }
}

describe('HeartbeatBatcherService', () => {
  const config = { HEARTBEAT_FLUSH_INTERVAL_MS: 1000, HEARTBEAT_MAX_BATCH: 1000, HEARTBEAT_MAX_PENDING: 100_000 } as RegistryApiConfig;
  const dropped = async (reason: string) => (await new RegistryMetricsService().heartbeatsDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  let repo: FakeRepository;
  let batcher: HeartbeatBatcherService;

  beforeEach(() => {
    repo = new FakeRepository();
    batcher = new HeartbeatBatcherService(repo as unknown as RegistryRepository, new RegistryMetricsService(), config);
  });

  it('coalesces many heartbeats of one instance into one row with the latest time and merged load', async () => {
    batcher.enqueue('a', { requestsPerMinute: 1, inflight: 2 }, new Date(1000));
    batcher.enqueue('a', { requestsPerMinute: 5 }, new Date(3000));
    batcher.enqueue('a', undefined, new Date(2000));
    batcher.enqueue('b', {}, new Date(1500));
    await batcher.flush();

    expect(repo.batches).toHaveLength(1);
    expect(repo.batches[0]).toEqual([
      { serviceId: 'a', lastSeen: new Date(3000), load: { requestsPerMinute: 5, inflight: 2 } },
      { serviceId: 'b', lastSeen: new Date(1500), load: {} },
    ]);
    await batcher.flush();
    expect(repo.batches).toHaveLength(1);
  });

  it('keeps a failed batch for the next flush, without overwriting newer heartbeats', async () => {
    batcher.enqueue('a', { inflight: 1 }, new Date(1000));
    repo.fail = true;
    await batcher.flush();
    expect(batcher.pendingCount).toBe(1);
    repo.fail = false;
    await batcher.flush();
    expect(repo.batches[0]).toEqual([{ serviceId: 'a', lastSeen: new Date(1000), load: { inflight: 1 } }]);
  });

  it('writes immediately once the batch is full', async () => {
    const small = new HeartbeatBatcherService(repo as unknown as RegistryRepository, new RegistryMetricsService(), { ...config, HEARTBEAT_MAX_BATCH: 2 } as RegistryApiConfig);
    const written = repo.nextWrite();
    small.enqueue('a', {}, new Date());
    expect(small.pendingCount).toBe(1);
    // The second distinct instance fills the batch: the write starts inside enqueue, with no flush() and no timer.
    small.enqueue('b', {}, new Date());
    expect(small.pendingCount).toBe(0);
    await written;
    expect(repo.batches[0].map((b) => b.serviceId)).toEqual(['a', 'b']);
  });

  it('holds at most HEARTBEAT_MAX_PENDING instances while the database is down, and counts the heartbeats it sheds', async () => {
    const bounded = new HeartbeatBatcherService(repo as unknown as RegistryRepository, new RegistryMetricsService(), { ...config, HEARTBEAT_MAX_BATCH: 100, HEARTBEAT_MAX_PENDING: 500 } as RegistryApiConfig);
    const shedBefore = await dropped('overflow');
    repo.fail = true;
    // 10,000 ids nobody registered, arriving while every write fails (each full batch is put back).
    for (let i = 0; i < 10_000; i++) bounded.enqueue(`unknown-${i}`, {}, new Date());
    await bounded.flush();
    expect(bounded.pendingCount).toBeLessThanOrEqual(500);
    expect((await dropped('overflow')) - shedBefore).toBe(10_000 - bounded.pendingCount);

    // Recovers by itself: once the database answers, what is held is written and the map empties.
    repo.fail = false;
    await bounded.flush();
    expect(bounded.pendingCount).toBe(0);
    expect(repo.batches.flat()).toHaveLength(500);
  });

  it('takes no slot for an id registration would refuse (the subject is anyone to publish on)', async () => {
    const invalidBefore = await dropped('invalid');
    batcher.enqueue('a', {}, new Date(1000));
    for (const id of ['*', '>', 'x'.repeat(129), 'a b', 'é']) batcher.enqueue(id, {}, new Date(1000));
    expect(batcher.pendingCount).toBe(1);
    expect((await dropped('invalid')) - invalidBefore).toBe(5);
    await batcher.flush();
    expect(repo.batches).toEqual([[{ serviceId: 'a', lastSeen: new Date(1000), load: {} }]]);
  });
});
