import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';

const PRUNE_INTERVAL_MS = 3_600_000;

/**
 * Deregistrations leave tombstones, and snapshots carry them so a consumer can refuse a late, older
 * event of a deleted instance. They are needed only while such an event can still arrive: an event
 * older than the stream's retention can no longer be replayed, so tombstones are kept twice
 * EVENT_STREAM_MAX_AGE_HOURS and then forgotten (hourly; any replica may run it).
 */
@Injectable()
export class TombstonePrunerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TombstonePrunerService.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly repository: RegistryRepository,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.prune(), PRUNE_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  get retentionMs(): number {
    return 2 * this.config.EVENT_STREAM_MAX_AGE_HOURS * 3_600_000;
  }

  async prune(): Promise<number> {
    try {
      const pruned = await this.repository.pruneTombstones(this.retentionMs);
      if (pruned) this.logger.log(`forgot ${pruned} tombstone(s) older than ${this.retentionMs / 3_600_000} h`);
      return pruned;
    } catch (error) {
      this.logger.warn(`tombstone pruning failed: ${(error as Error).message}; next try in an hour`);
      return 0;
    }
  }
}
