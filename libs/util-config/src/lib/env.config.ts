import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';

const SECRET_KEYS = Symbol('switchboard:secretKeys');

/** Marks an env property as a secret: `redactedConfig` masks it so it never reaches a log line. */
export function Secret(): PropertyDecorator {
  return (target, key) => {
    const keys: Set<string | symbol> = Reflect.getMetadata(SECRET_KEYS, target) ?? new Set();
    keys.add(key);
    Reflect.defineMetadata(SECRET_KEYS, keys, target);
  };
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

function describe(errors: ValidationError[]): string[] {
  return errors.flatMap((e) => Object.values(e.constraints ?? {}).map((reason) => `${e.property}: ${reason}`));
}

/**
 * Builds and validates one app's env class, once, at boot. Unset variables keep the class's
 * defaults; a bad one stops the app with a message naming the variable.
 * `afterValidate` adds cross-field rules (e.g. "no default tokens in production").
 */
export function loadConfig<T extends object>(
  cls: new () => T,
  env: NodeJS.ProcessEnv = process.env,
  afterValidate?: (config: T) => string[],
): T {
  const known = Object.keys(new cls());
  const plain = Object.fromEntries(known.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const config = plainToInstance(cls, plain, { enableImplicitConversion: true, exposeDefaultValues: true });
  const problems = describe(validateSync(config, { whitelist: false }));
  if (!problems.length && afterValidate) problems.push(...afterValidate(config));
  if (problems.length) throw new ConfigValidationError(problems);
  return config;
}

/** The config as safe to log: secrets replaced by `***`. */
export function redactedConfig<T extends object>(config: T): Record<string, unknown> {
  const secrets: Set<string | symbol> = Reflect.getMetadata(SECRET_KEYS, config) ?? new Set();
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, secrets.has(k) ? '***' : v]));
}
