import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import type { CacheEntry, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { DiscoveryCacheService } from './discovery-cache.service';

/** A stand-in for the Redis adapter: its answers are set per test. */
class FakeCache {
  readonly redis = Object.assign(new EventEmitter(), { disconnect: () => undefined, ping: jest.fn(async () => 'PONG') });
  ready = true;
  get: (key: string) => Promise<CacheEntry<unknown>> = async () => ({ state: 'absent' });
  setIfNewer = jest.fn(async (_key: string, _revision: number, _value: unknown) => true);
}

describe('DiscoveryCacheService', () => {
  let fake: FakeCache;
  let service: DiscoveryCacheService;
  const load = jest.fn(async (forCache: boolean) => ({ revision: forCache ? 7 : null, value: ['from-postgres'] }));

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    fake = new FakeCache();
    service = new DiscoveryCacheService(fake as unknown as DiscoveryCacheRepository, new RegistryMetricsService());
    load.mockClear();
  });
  afterEach(() => jest.restoreAllMocks());

  it('answers a hit from the cache without touching PostgreSQL', async () => {
    fake.get = async () => ({ state: 'hit', revision: 3, value: ['cached'] });
    expect(await service.read('discovery', 'k', load)).toEqual(['cached']);
    expect(load).not.toHaveBeenCalled();
  });

  it('loads a miss or a marker from PostgreSQL and offers it with its revision', async () => {
    fake.get = async () => ({ state: 'invalidated', revision: 5 });
    expect(await service.read('discovery', 'k', load)).toEqual(['from-postgres']);
    expect(load).toHaveBeenCalledWith(true);
    expect(fake.setIfNewer).toHaveBeenCalledWith('k', 7, ['from-postgres']);
  });

  it('does not offer a read made while a writer was in flight', async () => {
    const inFlight = jest.fn(async () => ({ revision: null, value: ['fresh-but-unsafe'] }));
    expect(await service.read('model', 'k', inFlight)).toEqual(['fresh-but-unsafe']);
    expect(fake.setIfNewer).not.toHaveBeenCalled();
  });

  it('falls back to PostgreSQL on every Redis failure, says so once per outage and once on recovery', async () => {
    fake.redis.emit('ready');
    fake.get = async () => Promise.reject(new Error('Command timed out'));
    for (let i = 0; i < 5; i++) expect(await service.read('discovery', 'k', load)).toEqual(['from-postgres']);
    expect(load).toHaveBeenCalledTimes(5);
    expect(load).not.toHaveBeenCalledWith(true);
    expect(service.state).toBe('down');

    fake.ready = false;
    fake.redis.emit('error', new Error('connect ECONNREFUSED'));
    expect(await service.read('discovery', 'k', load)).toEqual(['from-postgres']);

    fake.ready = true;
    fake.get = async () => ({ state: 'hit', revision: 9, value: ['cached'] });
    expect(await service.read('discovery', 'k', load)).toEqual(['cached']);
    expect(service.state).toBe('up');

    const warned = (Logger.prototype.warn as jest.Mock).mock.calls.filter(([m]) => String(m).includes('Redis unavailable'));
    const recovered = (Logger.prototype.log as jest.Mock).mock.calls.filter(([m]) => String(m).includes('Redis is back'));
    expect(warned).toHaveLength(1);
    expect(recovered).toHaveLength(1);
  });

  it('lets /health see a recovered Redis without waiting for traffic', async () => {
    fake.get = async () => Promise.reject(new Error('Command timed out'));
    await service.read('discovery', 'k', load);
    expect(service.state).toBe('down');
    expect(await service.probe()).toBe('up');
    fake.ready = false;
    fake.redis.emit('close');
    expect(await service.probe()).toBe('down');
  });

  it('reads PostgreSQL only when the cache is disabled', async () => {
    const disabled = new DiscoveryCacheService(null, new RegistryMetricsService());
    expect(await disabled.read('discovery', 'k', load)).toEqual(['from-postgres']);
    expect(disabled.state).toBe('disabled');
  });
});
