import { Inject, Injectable } from '@nestjs/common';
import { EndpointAllowlist, FieldError, HealthCheckSettings } from '@switchboard/contracts';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';
import { RegistryException } from './registry.exception';

/**
 * What a registrant may point the prober and the router at: an address allowed by
 * REGISTRY_ALLOWED_ENDPOINTS (when set), and check intervals no shorter than
 * HEALTH_CHECK_MIN_INTERVAL_MS. Checked at every registration, dry runs included, before any write.
 */
@Injectable()
export class EndpointPolicy {
  private readonly allowlist: EndpointAllowlist;
  private readonly minIntervalMs: number;

  constructor(@Inject(REGISTRY_API_CONFIG) config: RegistryApiConfig) {
    // Validated at boot, so this parse cannot fail here.
    this.allowlist = EndpointAllowlist.parse(config.REGISTRY_ALLOWED_ENDPOINTS ?? '');
    this.minIntervalMs = config.HEALTH_CHECK_MIN_INTERVAL_MS;
  }

  /** A service registration: vmIp + internalPort, and its health-check overrides. */
  checkService(vmIp: string, internalPort: number, healthCheck: HealthCheckSettings | undefined): void {
    const errors: FieldError[] = [];
    const verdict = this.allowlist.check(vmIp, internalPort);
    if (verdict === 'host-not-allowed') errors.push({ field: 'vmIp', reason: `vmIp ${vmIp} is not in REGISTRY_ALLOWED_ENDPOINTS` });
    if (verdict === 'port-not-allowed') errors.push({ field: 'internalPort', reason: `internalPort ${internalPort} (host ${vmIp}) is not in REGISTRY_ALLOWED_ENDPOINTS` });
    errors.push(...this.healthCheckErrors(healthCheck));
    if (errors.length) throw RegistryException.validation(errors);
  }

  /** A model registration's endpoint (given or defaulted). */
  checkModel(host: string, port: number): void {
    if (this.allowlist.check(host, port) !== 'allowed') {
      const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      throw RegistryException.validation([{ field: 'endpoint', reason: `endpoint ${shown} is not in REGISTRY_ALLOWED_ENDPOINTS` }]);
    }
  }

  private healthCheckErrors(settings: HealthCheckSettings | undefined): FieldError[] {
    const errors: FieldError[] = [];
    if (settings?.intervalMs !== undefined && settings.intervalMs < this.minIntervalMs) {
      errors.push({ field: 'healthCheck.intervalMs', reason: `healthCheck.intervalMs must be at least ${this.minIntervalMs} (HEALTH_CHECK_MIN_INTERVAL_MS)` });
    }
    // A timeout longer than the interval lets checks of one instance overlap: more requests than the interval promises.
    if (settings?.intervalMs !== undefined && settings.timeoutMs !== undefined && settings.timeoutMs > settings.intervalMs) {
      errors.push({ field: 'healthCheck.timeoutMs', reason: 'healthCheck.timeoutMs must not exceed healthCheck.intervalMs' });
    }
    return errors;
  }
}
