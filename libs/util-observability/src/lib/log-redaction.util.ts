import type { LogFn, Logger } from 'pino';
import { redactUrlsInText } from '@switchboard/config';

/** Header paths that must never reach a log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-registry-token"]',
  'req.headers["x-admin-token"]',
  'req.headers.cookie',
];

/**
 * pino `hooks.logMethod`: masks `scheme://user:password@` in every string argument of every log
 * line, whoever wrote it (a driver's error quoting its URL, a config dump), as the last line of
 * defence behind `redactedConfig` and `redactUrls`.
 */
export function redactUrlCredentials(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const redacted = args.map((arg: unknown) => (typeof arg === 'string' ? redactUrlsInText(arg) : arg));
  method.apply(this, redacted as Parameters<LogFn>);
}
