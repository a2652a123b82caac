import { Writable } from 'node:stream';
import pino from 'pino';
import { REDACTED_PATHS, redactUrlCredentials } from './log-redaction.util';

/** A pino logger with the apps' redaction settings, writing into `lines`. */
function logger(lines: string[]): pino.Logger {
  const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
  return pino({ redact: { paths: REDACTED_PATHS, censor: '***' }, hooks: { logMethod: redactUrlCredentials } }, sink);
}

describe('log redaction', () => {
  it('masks URL credentials in any message, however it is logged', () => {
    const lines: string[] = [];
    const log = logger(lines);
    log.warn('NATS at nats://svc:secretpw@nats:4222 not reachable');
    log.info({ context: 'Bootstrap' }, 'config {"NATS_URL":"nats://svc:secretpw@n1:4222,nats://tok3n@n2:4222"}');
    log.error('redis said: connect to redis://:hunter2@cache:6379 failed %s', 'ECONNREFUSED');
    const out = lines.join('');
    expect(out).not.toMatch(/secretpw|tok3n|hunter2/);
    expect(out).toContain('nats://***@nats:4222 not reachable');
    expect(out).toContain('redis://***@cache:6379 failed ECONNREFUSED');
  });

  it('masks the token headers of a logged request', () => {
    const lines: string[] = [];
    logger(lines).info({ req: { headers: { authorization: 'Bearer sk-live-1', 'x-registry-token': 'reg-2', 'x-admin-token': 'adm-3', cookie: 'c=4' } } }, 'request');
    expect(lines.join('')).not.toMatch(/sk-live-1|reg-2|adm-3|c=4/);
  });
});
