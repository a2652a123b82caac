import { modelStatusOf } from '@switchboard/contracts';
import type { RoutedInstance } from '@switchboard/routing-table';

/** An instance as the console's feed sends it (short keys: a 10,000-instance snapshot is one message). */
export interface ConsoleInstance {
  id: string;
  service: string;
  env: string;
  models: readonly string[];
  status: string;
  admin: string;
  /** The model registry's status word (ready, degraded, unhealthy, offline, disabled, draining). */
  word: string;
  routable: boolean;
  revision: number;
  url: string;
  version: string | null;
  region: string | null;
  /** Epoch ms of the last heartbeat this registry-api heard, else of the registry's lastSeen. */
  lastSeen: number | null;
  load: ConsoleLoad;
}

export interface ConsoleLoad {
  rpm?: number;
  latency?: number;
  errorRate?: number;
  inflight?: number;
}

export function consoleLoad(instance: RoutedInstance): ConsoleLoad {
  const { requestsPerMinute, averageLatency, errorRate, inflight } = instance.load;
  return { rpm: requestsPerMinute, latency: averageLatency, errorRate, inflight };
}

export function lastSeenOf(instance: RoutedInstance): number | null {
  const registry = instance.details?.lastSeen ? Date.parse(instance.details.lastSeen) : NaN;
  const heard = instance.lastHeartbeatAt ?? NaN;
  const best = Math.max(Number.isNaN(registry) ? -1 : registry, Number.isNaN(heard) ? -1 : heard);
  return best < 0 ? null : best;
}

export function toConsoleInstance(instance: RoutedInstance): ConsoleInstance {
  return {
    id: instance.serviceId,
    service: instance.serviceName,
    env: instance.environment,
    models: instance.models,
    status: instance.status,
    admin: instance.adminState,
    word: modelStatusOf(instance),
    routable: instance.routable,
    revision: instance.revision,
    url: instance.internalUrl,
    version: instance.details?.version ?? null,
    region: instance.details?.region ?? null,
    lastSeen: lastSeenOf(instance),
    load: consoleLoad(instance),
  };
}

/** One Server-Sent Events message; data is one line of JSON, so it needs no splitting. */
export function sseMessage(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
