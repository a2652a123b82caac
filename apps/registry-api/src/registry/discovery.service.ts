import { Injectable } from '@nestjs/common';
import { discoveryCacheKey, isRoutable, ModelDeploymentView, modelRegistryCacheKey, ServiceInstanceView } from '@switchboard/contracts';
import { InstanceFilter, RegistryRepository, RevisionedRows } from '@switchboard/persistence';
import { DiscoveryCacheService } from '../cache/discovery-cache.service';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { toInstanceView, toModelViews } from './instance-view.util';
import { RegistryErrorCode, RegistryException } from './registry.exception';

/**
 * The read side that clients poll: discovery and the model lookup, served through the Redis cache.
 * The cache holds the whole list for a key; the pick among its instances is made here per request,
 * so load still spreads while every answer comes from one cached value.
 */
/**
 * Round-robin cursors kept at once. Names come and go (every service ever asked for would stay), so the
 * least recently asked is forgotten first; forgetting one only restarts its round-robin.
 */
export const DISCOVERY_CURSOR_LIMIT = 10_000;

@Injectable()
export class DiscoveryService {
  /** In least-recently-used order: each use moves a key to the end. */
  private readonly cursor = new Map<string, number>();

  constructor(
    private readonly repository: RegistryRepository,
    private readonly cache: DiscoveryCacheService,
    private readonly metrics: RegistryMetricsService,
  ) {}

  get cursorCount(): number {
    return this.cursor.size;
  }

  /** One routable instance: healthy ones before degraded, round-robin among equals. */
  async discover(serviceName: string, environment?: string): Promise<ServiceInstanceView> {
    const instances = environment
      ? await this.cache.read('discovery', discoveryCacheKey(environment, serviceName), async (forCache) => {
          const { revision, instances } = await this.read({ serviceName, environment }, forCache);
          return { revision, value: instances.map(toInstanceView) };
        })
      : // Across environments: no key of the cache layout names it, so it is read from PostgreSQL.
        (await this.repository.list({ serviceName })).map(toInstanceView);
    if (!instances.length) {
      throw new RegistryException(RegistryErrorCode.ServiceNotFound, `service not found in registry: ${serviceName}${environment ? ` (environment: ${environment})` : ''}`);
    }
    const routable = instances.filter(isRoutable);
    const healthy = routable.filter((i) => i.status === 'healthy');
    const pool = healthy.length ? healthy : routable;
    if (!pool.length) {
      const states = instances.map((i) => `${i.serviceId}: ${i.adminState === 'enabled' ? i.status : i.adminState}`).join(', ');
      throw new RegistryException(RegistryErrorCode.NoRoutableInstance, `no routable instance of ${serviceName} (${states})`);
    }
    return pool[this.nextCursor(`${serviceName}|${environment ?? '*'}`) % pool.length];
  }

  private nextCursor(key: string): number {
    const cursor = this.cursor.get(key) ?? 0;
    this.cursor.delete(key);
    this.cursor.set(key, cursor + 1);
    if (this.cursor.size > DISCOVERY_CURSOR_LIMIT) {
      this.cursor.delete(this.cursor.keys().next().value as string);
      this.metrics.discoveryCursorsEvicted.inc();
    }
    return cursor;
  }

  /** Every deployment of `model` in `environment`, whatever its status; 404 when there is none. */
  async lookupModel(model: string, environment: string): Promise<ModelDeploymentView[]> {
    const deployments = await this.cache.read('model', modelRegistryCacheKey(environment, model), async (forCache) => {
      const { revision, instances } = await this.read({ environment, model }, forCache);
      const views = instances.flatMap(toModelViews).filter((m) => m.modelName === model);
      return { revision, value: views.sort((a, b) => a.serviceId.localeCompare(b.serviceId)) };
    });
    if (!deployments.length) {
      throw new RegistryException(RegistryErrorCode.ModelNotFound, `model not found in registry: ${model} (environment: ${environment})`);
    }
    return deployments;
  }

  /** With the revision the rows are complete up to when they go to the cache; a plain read otherwise (Redis down, cache off). */
  private async read(filter: InstanceFilter, forCache: boolean): Promise<RevisionedRows> {
    return forCache ? this.repository.listAsOfRevision(filter) : { revision: null, instances: await this.repository.list(filter) };
  }
}
