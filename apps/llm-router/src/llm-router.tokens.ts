/** Injection tokens of llm-router's non-class providers. */
export const LLM_ROUTER_CONFIG = Symbol('LLM_ROUTER_CONFIG');
