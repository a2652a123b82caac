#!/usr/bin/env node
// Readable logs for people: the apps always write pino JSON (what production collects); this turns
// each line into one line a person reads (time, coloured level, [context], message, trace id).
// `npm start` uses it for every app; alone: `node dist/apps/…/main.js | node tools/scripts/pretty-logs.mjs`.
// `--format json` (or LOG_FORMAT=json) passes lines through untouched.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pinoPretty from 'pino-pretty';

/** Keys a person does not need on every line (the app is in the prefix, the request in the message). */
const HIDDEN = 'pid,hostname,app,name,context,req,res,reqId,responseTime,span_id,trace_flags';

/** `pretty` unless LOG_FORMAT says otherwise; production (NODE_ENV=production) stays JSON. */
export function logFormat(env = process.env) {
  const wanted = env.LOG_FORMAT?.trim().toLowerCase();
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  return env.NODE_ENV === 'production' ? 'json' : 'pretty';
}

/** A function from one output line of an app to the text to print (with its newline). */
export function lineFormatter({ format = 'pretty', colorize = pinoPretty.isColorSupported } = {}) {
  if (format === 'json') return (line) => `${line}\n`;
  const pretty = pinoPretty.prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    ignore: HIDDEN,
    messageFormat: (log, messageKey) => {
      const context = log.context ? `[${log.context}] ` : '';
      const { req, res } = log;
      // pino-http's "request completed": the request and its outcome in the one line.
      const request = req && res ? ` ${req.method} ${req.url} → ${res.statusCode}${log.responseTime !== undefined ? ` in ${log.responseTime} ms` : ''}` : '';
      return `${context}${log[messageKey] ?? ''}${request}`;
    },
  });
  return (line) => {
    // Nest's own lines before the pino logger takes over, a stack trace: printed as they are.
    if (!line.startsWith('{')) return `${line}\n`;
    try {
      return pretty(line).replace(/\n?$/, '\n');
    } catch {
      return `${line}\n`;
    }
  };
}

// As a filter: stdin → stdout.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const at = process.argv.indexOf('--format');
  const format = at > 0 ? process.argv[at + 1] : logFormat();
  const format1 = lineFormatter({ format });
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => process.stdout.write(format1(line)));
}
