/** Injection tokens of registry-api's non-class providers. */
export const REGISTRY_API_CONFIG = Symbol('REGISTRY_API_CONFIG');
export const SUBJECTS = Symbol('SUBJECTS');
/** The Redis discovery cache adapter, or null when CACHE_ENABLED=false. */
export const DISCOVERY_CACHE = Symbol('DISCOVERY_CACHE');
