/** What registry-api's console feed sends (apps/registry-api/src/console). */
export interface ConsoleLoad {
  rpm?: number;
  latency?: number;
  errorRate?: number;
  inflight?: number;
}

export interface ConsoleInstance {
  id: string;
  service: string;
  env: string;
  models: readonly string[];
  status: HealthStatus;
  admin: AdminState;
  /** The model registry's status word. */
  word: ModelStatus;
  routable: boolean;
  revision: number;
  url: string;
  version: string | null;
  region: string | null;
  lastSeen: number | null;
  load: ConsoleLoad;
}

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy' | 'offline';
export type AdminState = 'enabled' | 'disabled' | 'draining';
export type ModelStatus = 'ready' | 'degraded' | 'unhealthy' | 'offline' | 'disabled' | 'draining';

export const HEALTH_STATUSES: readonly HealthStatus[] = ['healthy', 'degraded', 'unhealthy', 'offline'];
export const ADMIN_STATES: readonly AdminState[] = ['enabled', 'disabled', 'draining'];
export const MODEL_STATUSES: readonly ModelStatus[] = ['ready', 'degraded', 'unhealthy', 'offline', 'disabled', 'draining'];

export interface RouterModelSummary {
  model: string;
  requestsPerSecond: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  errors: Record<string, number>;
  ejected: string[];
  panic: boolean;
}

export interface ScrapeTarget {
  url: string;
  up: boolean;
  error?: string;
}

export interface ConsoleMetrics {
  at: number;
  intervalSeconds: number;
  routers: ScrapeTarget[];
  models: RouterModelSummary[];
  probers: ScrapeTarget[];
  selfPreservation: Record<string, boolean>;
  registry: { outboxDepth: number | null; instances: number; revision: number };
  malformedLines: number;
}
