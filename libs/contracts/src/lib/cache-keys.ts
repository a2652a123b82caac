import type { ParsedRegistryEvent } from './registry.event';

/**
 * The Redis discovery cache's key layout (DESIGN.md "Redis cache"). Environments and service names
 * are subject tokens (no `:`), so a key never reads two ways even though model names may hold `:`.
 */
export function discoveryCacheKey(environment: string, serviceName: string): string {
  return `discovery:${environment}:${serviceName}`;
}

export function modelRegistryCacheKey(environment: string, model: string): string {
  return `model_registry:${environment}:${model}`;
}

interface Placement {
  serviceName: string;
  environment: string;
  models?: readonly string[];
}

function keysOf(placement: Placement): string[] {
  return [
    discoveryCacheKey(placement.environment, placement.serviceName),
    ...(placement.models ?? []).map((model) => modelRegistryCacheKey(placement.environment, model)),
  ];
}

/**
 * Every cache key whose value an event changes: the instance's discovery list and the lookup of
 * each model it serves, in its new place and, after a move or a removal, in its old one.
 */
export function cacheKeysForEvent(parsed: ParsedRegistryEvent): string[] {
  const placements: Placement[] = [];
  switch (parsed.kind) {
    case 'registered':
      placements.push(parsed.event.data.instance);
      if (parsed.event.data.previous) placements.push(parsed.event.data.previous);
      break;
    case 'statusChanged':
      placements.push(parsed.event.data.instance);
      break;
    case 'deregistered':
      placements.push(parsed.event.data);
      break;
  }
  return [...new Set(placements.flatMap(keysOf))];
}
