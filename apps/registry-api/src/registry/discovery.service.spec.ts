import type { RegistryRepository, ServiceInstanceEntity } from '@switchboard/persistence';
import type { DiscoveryCacheService } from '../cache/discovery-cache.service';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { DISCOVERY_CURSOR_LIMIT, DiscoveryService } from './discovery.service';

/** Every name it is asked for has two healthy instances (read across environments, so no cache). */
class FakeRepository {
  async list(filter: { serviceName: string }): Promise<ServiceInstanceEntity[]> {
    return ['a', 'b'].map((suffix) => row(`${filter.serviceName}-${suffix}`, filter.serviceName));
  }
}

function row(serviceId: string, serviceName: string): ServiceInstanceEntity {
  return {
    serviceId, serviceName, environment: 'production', vmIp: '10.0.0.1', internalPort: 8000, externalDomain: 'x.example.com', version: '1', deploymentId: 'd', region: 'r',
    models: [], metadata: {}, healthCheck: {}, status: 'healthy', adminState: 'enabled', revision: 1, lastSeen: null, registeredAt: new Date(0), updatedAt: new Date(0), load: {},
  } as unknown as ServiceInstanceEntity;
}

describe('DiscoveryService round-robin', () => {
  const evicted = async () => (await new RegistryMetricsService().discoveryCursorsEvicted.get()).values.reduce((sum, v) => sum + v.value, 0);
  let service: DiscoveryService;

  beforeEach(() => {
    service = new DiscoveryService(new FakeRepository() as unknown as RegistryRepository, {} as DiscoveryCacheService, new RegistryMetricsService());
  });

  it('alternates between the routable instances of a service', async () => {
    const picks = [];
    for (let i = 0; i < 4; i++) picks.push((await service.discover('svc')).serviceId);
    expect(picks).toEqual(['svc-a', 'svc-b', 'svc-a', 'svc-b']);
  });

  it('keeps at most DISCOVERY_CURSOR_LIMIT cursors however many names are asked for, forgets the least recently used first, and counts them', async () => {
    const before = await evicted();
    expect((await service.discover('hot')).serviceId).toBe('hot-a');
    for (let i = 0; i < DISCOVERY_CURSOR_LIMIT + 500; i++) {
      await service.discover(`name-${i}`);
      // A name in steady use is never the one forgotten.
      if (i % 1000 === 0) await service.discover('hot');
    }
    expect(service.cursorCount).toBe(DISCOVERY_CURSOR_LIMIT);
    expect((await evicted()) - before).toBe(501);
    const hotPicks = [(await service.discover('hot')).serviceId, (await service.discover('hot')).serviceId];
    expect(hotPicks).toHaveLength(2);
    expect(new Set(hotPicks)).toEqual(new Set(['hot-a', 'hot-b']));
  });
});
