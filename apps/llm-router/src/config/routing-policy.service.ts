import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { FieldError, parseWith } from '@switchboard/contracts';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import type { LlmRouterConfig } from './llm-router.config';
import { BUILTIN_POLICY, ModelPolicy, ResolvedPolicy, RoutingPolicyFile, TimeoutsPolicy } from './routing-policy.config';

interface LoadedPolicy {
  defaults: ResolvedPolicy;
  models: Map<string, ResolvedPolicy>;
  aliases: Map<string, string>;
  fallbacks: Map<string, string[]>;
}

const EMPTY: LoadedPolicy = { defaults: BUILTIN_POLICY, models: new Map(), aliases: new Map(), fallbacks: new Map() };

function merge(base: ResolvedPolicy, patch?: ModelPolicy): ResolvedPolicy {
  const t: TimeoutsPolicy = patch?.timeouts ?? {};
  return {
    strategy: patch?.strategy ?? base.strategy,
    affinityHeader: (patch?.affinityHeader ?? base.affinityHeader).toLowerCase(),
    connectMs: t.connectMs ?? base.connectMs,
    firstTokenMs: t.firstTokenMs ?? base.firstTokenMs,
    totalMs: t.totalMs ?? base.totalMs,
    maxAttempts: patch?.maxAttempts ?? base.maxAttempts,
    ejectAfterFailures: patch?.ejectAfterFailures ?? base.ejectAfterFailures,
    ejectBaseMs: patch?.ejectBaseMs ?? base.ejectBaseMs,
  };
}

/** Validates a policy document; returns field errors instead of throwing, so a reload can keep the last good one. */
export function compilePolicy(json: unknown): { ok: true; policy: LoadedPolicy } | { ok: false; errors: FieldError[] } {
  const top = parseWith(RoutingPolicyFile, json);
  if (!top.ok) return top;
  const errors: FieldError[] = [];
  const defaults = merge(BUILTIN_POLICY, top.value.defaults);
  const models = new Map<string, ResolvedPolicy>();
  for (const [model, raw] of Object.entries(top.value.models ?? {})) {
    const parsed = parseWith(ModelPolicy, raw);
    if (parsed.ok) models.set(model, merge(defaults, parsed.value));
    else errors.push(...parsed.errors.map((e) => ({ field: `models.${model}.${e.field}`, reason: e.reason })));
  }
  const aliases = new Map<string, string>();
  for (const [alias, target] of Object.entries(top.value.aliases ?? {})) {
    if (typeof target === 'string' && target) aliases.set(alias, target);
    else errors.push({ field: `aliases.${alias}`, reason: 'must be a model name' });
  }
  const fallbacks = new Map<string, string[]>();
  for (const [model, list] of Object.entries(top.value.fallbacks ?? {})) {
    if (Array.isArray(list) && list.every((m) => typeof m === 'string' && m)) fallbacks.set(model, list);
    else errors.push({ field: `fallbacks.${model}`, reason: 'must be a list of model names' });
  }
  return errors.length ? { ok: false, errors } : { ok: true, policy: { defaults, models, aliases, fallbacks } };
}

/**
 * Aliases, fallbacks and per-model routing settings from `ROUTER_POLICY_FILE`, reloaded when the
 * file changes, without a restart. An invalid file is reported and the previous policy stays.
 */
@Injectable()
export class RoutingPolicyService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RoutingPolicyService.name);
  private current: LoadedPolicy = EMPTY;
  private version = 0;
  private loadedDigest?: string;

  constructor(@Inject(LLM_ROUTER_CONFIG) private readonly config: LlmRouterConfig) {}

  onModuleInit(): void {
    const file = this.config.ROUTER_POLICY_FILE;
    if (!file) return;
    if (!this.reload()) throw new Error(`ROUTER_POLICY_FILE ${file} is not a valid routing policy (see the log)`);
    watchFile(file, { interval: 250, persistent: false }, () => this.reload());
  }

  onApplicationShutdown(): void {
    if (this.config.ROUTER_POLICY_FILE) unwatchFile(this.config.ROUTER_POLICY_FILE);
  }

  /** Number of successful loads, for /health. */
  get loads(): number {
    return this.version;
  }

  /** SHA-256 of the file content in force, so an operator (or a test) can tell which version is live. */
  get digest(): string | undefined {
    return this.loadedDigest;
  }

  reload(): boolean {
    const file = this.config.ROUTER_POLICY_FILE as string;
    let json: unknown;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
      json = JSON.parse(text);
    } catch (error) {
      this.logger.error(`routing policy ${file} unreadable, keeping the previous one: ${(error as Error).message}`);
      return false;
    }
    const compiled = compilePolicy(json);
    if (!compiled.ok) {
      this.logger.error(`routing policy ${file} invalid, keeping the previous one: ${compiled.errors.map((e) => `${e.field}: ${e.reason}`).join('; ')}`);
      return false;
    }
    this.current = compiled.policy;
    this.version++;
    this.loadedDigest = createHash('sha256').update(text).digest('hex');
    this.logger.log(`routing policy loaded from ${file}: ${compiled.policy.aliases.size} alias(es), ${compiled.policy.models.size} model setting(s)`);
    return true;
  }

  /** The model an incoming name means, then its fallbacks, in the order to try them. */
  candidates(requested: string): string[] {
    const target = this.current.aliases.get(requested) ?? requested;
    const chain = [target, ...(this.current.fallbacks.get(target) ?? [])];
    return [...new Set(chain)];
  }

  policyFor(model: string): ResolvedPolicy {
    return this.current.models.get(model) ?? this.current.defaults;
  }

  aliases(): ReadonlyMap<string, string> {
    return this.current.aliases;
  }
}
