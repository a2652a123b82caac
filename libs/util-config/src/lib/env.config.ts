import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import { IsIn, validateSync, ValidationError, ValidationOptions } from 'class-validator';
import { redactUrls, redactUrlsInText } from './redact-url.util';

const SECRET_KEYS = Symbol('switchboard:secretKeys');

/** Marks an env property as a secret: `redactedConfig` masks it so it never reaches a log line. */
export function Secret(): PropertyDecorator {
  return (target, key) => {
    // A copy: the inherited set belongs to the base class, shared by every app that extends it.
    const keys = new Set<string | symbol>(Reflect.getMetadata(SECRET_KEYS, target) ?? []);
    keys.add(key);
    Reflect.defineMetadata(SECRET_KEYS, keys, target);
  };
}

/** `@IsIn` for a readonly tuple of string literals (`as const`), without casting it; the message lists the values. */
export function IsOneOf(values: readonly string[], options?: ValidationOptions): PropertyDecorator {
  return IsIn(values, { message: `$property must be one of: ${values.join(', ')}`, ...options });
}

/** An env class with rules across its variables (`BaseAppEnv` and its subclasses). */
interface CrossFieldRules {
  crossFieldProblems(): string[];
}

function hasCrossFieldRules(config: object): config is CrossFieldRules {
  return typeof (config as Partial<CrossFieldRules>).crossFieldProblems === 'function';
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
 * Cross-field rules come from the class's `crossFieldProblems()` (e.g. NATS credentials in
 * production) and from `afterValidate` (e.g. "no default tokens in production").
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
  if (!problems.length) {
    if (hasCrossFieldRules(config)) problems.push(...config.crossFieldProblems());
    if (afterValidate) problems.push(...afterValidate(config));
  }
  if (problems.length) throw new ConfigValidationError(problems);
  return config;
}

/**
 * The config as safe to log: secrets replaced by `***` (unset ones stay unset, so the log says
 * which are configured), and `user:password@` in any other URL (`NATS_URL`) by `***@`.
 */
export function redactedConfig<T extends object>(config: T): Record<string, unknown> {
  const secrets: Set<string | symbol> = Reflect.getMetadata(SECRET_KEYS, config) ?? new Set();
  const shown = (key: string, value: unknown): unknown => {
    if (secrets.has(key)) return value === undefined ? undefined : '***';
    if (typeof value !== 'string') return value;
    // A server list may have entries without a scheme (`user:pw@host:4222`); free text needs one.
    return /\s/.test(value) ? redactUrlsInText(value) : redactUrls(value);
  };
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, shown(k, v)]));
}

/**
 * A boolean env var: `true/1/yes` or `false/0/no`. Reads the raw string, because implicit
 * conversion would turn "false" into `true`.
 */
export function BooleanFromEnv(): PropertyDecorator {
  return Transform(({ obj, key }) => {
    const raw: unknown = obj[key];
    if (typeof raw !== 'string') return raw;
    const value = raw.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(value)) return true;
    if (['false', '0', 'no'].includes(value)) return false;
    return raw; // left as a string so IsBoolean names the variable
  });
}

/** For an app's main.ts: {@link loadConfig}, or print the problems naming each variable and exit 78 (EX_CONFIG). */
export function loadConfigOrExit<T extends object>(app: string, cls: new () => T, afterValidate?: (config: T) => string[]): T {
  try {
    return loadConfig(cls, process.env, afterValidate);
  } catch (error) {
    if (!(error instanceof ConfigValidationError)) throw error;
    process.stderr.write(`${app}: ${error.message}\n`);
    process.exit(78);
  }
}

/**
 * For an app's `main().catch(…)`: one message on stderr and exit 1. URL credentials are masked,
 * since a driver's error may quote the URL it was given; an error without a stack (a refusal that
 * says all there is to say) shows its message alone.
 */
export function exitOnStartFailure(app: string): (error: Error) => never {
  return (error) => {
    process.stderr.write(`${app} failed to start: ${redactUrlsInText(error.stack || error.message)}\n`);
    process.exit(1);
  };
}
