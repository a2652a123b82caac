import { HeartbeatDto, ListServicesQueryDto, RegisterServiceDto, UpdateStatusDto } from './service-instance.dto';
import { buildRegistryEvent, InvalidEventError, parseRegistryEvent } from './registry.event';
import { parseHeartbeat } from './heartbeat.util';
import { escapeControlChars, untrustedInputErrors } from './untrusted-input.util';
import { parseWith } from './validation.util';

const registration = {
  serviceName: 'mech-llms',
  serviceId: 'mech-llms-prod-1',
  vmIp: '10.0.0.1',
  internalPort: 3008,
  externalDomain: 'llm.example.com',
  version: '1.2.0',
  deploymentId: 'd',
  environment: 'production',
  region: 'nyc1',
};

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe('untrustedInputErrors (before any DTO)', () => {
  it('passes ordinary JSON, tab, line feed and carriage return in values', () => {
    expect(untrustedInputErrors({ a: ['x', 1, -0, true, null], b: { c: 'line\nnext\tcol\r' } })).toEqual([]);
  });

  it.each([
    [{ version: 'a\u0000b' }, 'version', 'version must not contain U+0000 (NUL)'],
    [{ metadata: { deep: ['ok', 'x\u0000'] } }, 'metadata.deep.1', 'metadata.deep.1 must not contain U+0000 (NUL)'],
    [{ reason: 'bell\u0007' }, 'reason', 'reason must not contain control characters (found U+0007)'],
    [{ region: 'esc\u001b[31m' }, 'region', 'region must not contain control characters (found U+001B)'],
    [{ region: 'half \ud800 pair' }, 'region', 'region must be well-formed Unicode (it has a lone surrogate)'],
    [{ metadata: { n: Infinity } }, 'metadata.n', 'metadata.n must be a finite number'],
    [{ metadata: { ['k\u0000']: 1 } }, 'metadata.k\\u0000', 'keys of metadata must not contain U+0000 (NUL)'],
    [{ metadata: { ['tab\there']: 1 } }, 'metadata.tab\\u0009here', 'keys of metadata must not contain control characters (found U+0009)'],
    [{ metadata: JSON.parse('{"__proto__": {"x": 1}}') }, 'metadata.__proto__', 'metadata must not have the key "__proto__"'],
    [{ metadata: { constructor: 1 } }, 'metadata.constructor', 'metadata must not have the key "constructor"'],
  ])('refuses %j at %s', (value, field, reason) => {
    expect(untrustedInputErrors(value)).toEqual([{ field, reason }]);
  });

  it('names a path parameter or query field by its name, and the whole value as (body)', () => {
    expect(untrustedInputErrors('id\u0000', 'serviceId')).toEqual([{ field: 'serviceId', reason: 'serviceId must not contain U+0000 (NUL)' }]);
    expect(untrustedInputErrors(nested(40))[0]).toEqual({ field: 'a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a', reason: expect.stringMatching(/nested deeper than 32 levels$/) });
    expect(untrustedInputErrors(Array.from({ length: 30_000 }, () => 0))).toEqual([{ field: '(body)', reason: '(body) has more than 20000 items' }]);
    expect(untrustedInputErrors({ a: Array.from({ length: 15_000 }, () => [0]) })).toEqual([{ field: '(body)', reason: '(body) has more than 20000 values' }]);
  });

  it('refuses what is not JSON (a function, a Date) and reports at most ten problems', () => {
    expect(untrustedInputErrors({ f: () => 1, d: new Date(0) }).map((e) => e.field)).toEqual(['f', 'd']);
    expect(untrustedInputErrors(Array.from({ length: 100 }, () => '\u0000'))).toHaveLength(10);
  });

  it('escapes control characters and lone surrogates for messages', () => {
    expect(escapeControlChars('a\u0000b\u001f\ud800ok\ud83d\ude00')).toBe('a\\u0000b\\u001f\\ud800ok\ud83d\ude00');
  });
});

describe('every parser runs it first', () => {
  it('parseWith: commands, queries and DTOs refuse U+0000 with the field and the reason', () => {
    expect(parseWith(UpdateStatusDto, { status: 'healthy', reason: 'x\u0000' })).toEqual({ ok: false, errors: [{ field: 'reason', reason: 'reason must not contain U+0000 (NUL)' }] });
    expect(parseWith(RegisterServiceDto, { ...registration, metadata: { ['a\u0000']: 'b' } })).toEqual({
      ok: false,
      errors: [{ field: 'metadata.a\\u0000', reason: 'keys of metadata must not contain U+0000 (NUL)' }],
    });
    expect(parseWith(ListServicesQueryDto, { capability: 'gpu\u0000' })).toMatchObject({ ok: false, errors: [{ field: 'capability' }] });
  });

  it('single-line fields refuse tab and line feed too; free text keeps them', () => {
    expect(parseWith(RegisterServiceDto, { ...registration, version: '1.0\n' })).toEqual({ ok: false, errors: [{ field: 'version', reason: 'version must be one line without control characters' }] });
    expect(parseWith(RegisterServiceDto, { ...registration, capabilities: ['a\tb'] })).toEqual({ ok: false, errors: [{ field: 'capabilities', reason: 'capabilities must be one line without control characters' }] });
    expect(parseWith(UpdateStatusDto, { status: 'healthy', reason: 'line one\nline two' }).ok).toBe(true);
  });

  it('parseHeartbeat: the fast path takes numbers only, so a string with U+0000 reaches the full check', () => {
    expect(parseHeartbeat({ metadata: { inflight: 1 } }).ok).toBe(true);
    expect(parseHeartbeat({ metadata: { inflight: 'x\u0000' } })).toEqual({ ok: false, errors: [{ field: 'metadata.inflight', reason: 'metadata.inflight must not contain U+0000 (NUL)' }] });
    expect(parseHeartbeat({ metadata: { ['in\u0000flight']: 1 } })).toMatchObject({ ok: false, errors: [{ reason: 'keys of metadata must not contain U+0000 (NUL)' }] });
    expect(parseWith(HeartbeatDto, nested(50)).ok).toBe(false);
  });

  it('parseRegistryEvent: a forged event with U+0000 in any string is invalid, naming the field', () => {
    const event = buildRegistryEvent('deregistered', 'svc-1', { revision: 3, serviceId: 'svc-1', serviceName: 'svc', environment: 'production', models: ['m\u0000'] }, new Date(0));
    let thrown: unknown;
    try {
      parseRegistryEvent(JSON.parse(JSON.stringify(event)));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidEventError);
    expect((thrown as InvalidEventError).errors).toEqual([{ field: 'data.models.0', reason: 'data.models.0 must not contain U+0000 (NUL)' }]);
  });
});
