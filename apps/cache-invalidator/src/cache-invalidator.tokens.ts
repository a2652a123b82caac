/** Injection tokens of cache-invalidator's non-class providers. */
export const CACHE_INVALIDATOR_CONFIG = Symbol('CACHE_INVALIDATOR_CONFIG');
