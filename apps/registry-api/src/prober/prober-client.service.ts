import { Inject, Injectable } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG, SUBJECTS } from '../registry-api.tokens';
import { RegistryErrorCode, RegistryException } from '../registry/registry.exception';

/** registry-api's side of `prober.cmd.*`: asks health-prober over NATS request/reply. */
@Injectable()
export class ProberClient {
  constructor(
    private readonly nats: NatsClient,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {}

  /** Asks the health-prober to run a round now; its summary is the answer. */
  async runHealthChecks(): Promise<unknown> {
    try {
      return await this.nats.request(this.subjects.proberRunChecksCommand, {}, this.config.PROBER_REQUEST_TIMEOUT_MS);
    } catch (error) {
      const reason = (error as { code?: string }).code === '503' ? 'no health-prober is running' : (error as Error).message;
      throw new RegistryException(RegistryErrorCode.ProberUnavailable, `health checks could not run: ${reason}`);
    }
  }
}
