/** Injection tokens of registry-api's non-class providers. */
export const REGISTRY_API_CONFIG = Symbol('REGISTRY_API_CONFIG');
export const SUBJECTS = Symbol('SUBJECTS');
