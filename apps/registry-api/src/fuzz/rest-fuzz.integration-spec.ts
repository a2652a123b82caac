import fc from 'fast-check';
import { waitFor } from '@switchboard/testing';
import { HeartbeatBatcherService } from '../heartbeat/heartbeat-batcher.service';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

/**
 * Thousands of generated hostile requests against the real app (Fastify inject, real PostgreSQL and
 * NATS): every write case carries at least one thing that must be refused, so the registry must
 * answer each with 400 (or 413) naming a field, never 5xx, and end exactly as it started.
 * FUZZ_SEED reproduces a run; FUZZ_RUNS scales it.
 */
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261130);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1);
const TARGET = 'fz-target';

interface Case {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  body?: string;
  /** refused: 400/413 only; read: 200, 400 or 404; unknown: a write to an id that does not exist (400 or 404). */
  expect: 'refused' | 'read' | 'unknown';
}

// --- building blocks -------------------------------------------------------------------------

const BAD_CHARS = ['\u0000', '\u0001', '\u0007', '\u0008', '\u000b', '\u000c', '\u000e', '\u001b', '\u001f', '\ud800', '\udbff', '\udc00', '\udfff'];
/** A string that must be refused wherever it goes: it holds U+0000, another C0 control or a lone surrogate. */
const poisonString = fc
  .tuple(fc.string({ maxLength: 12 }), fc.constantFrom(...BAD_CHARS), fc.string({ maxLength: 12 }))
  .map(([a, bad, b]) => `${a}${bad}${b}`);
/** Raw JSON number tokens: Infinity once parsed, or far outside any field's range. */
const hugeNumber = fc.constantFrom('1e400', '-1e400', '1e309', '123456789012345678901234567890', '9007199254740993e300');
const reservedKey = fc.constantFrom('__proto__', 'constructor', 'prototype');
const wrongType = fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string({ maxLength: 4 }), { minLength: 1, maxLength: 3 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.integer(), { minKeys: 1, maxKeys: 2 }));
const deepValue = fc.integer({ min: 33, max: 400 }).map((depth) => {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { d: value };
  return value;
});

type Body = Record<string, unknown>;
/** A change to a valid body that makes it invalid; raw edits splice JSON text JSON.stringify cannot produce. */
type Poison = { apply: (body: Body) => void } | { raw: (json: string) => string };

function setRaw(field: string, token: string): (json: string) => string {
  return (json) => `${json.slice(0, -1)},${JSON.stringify(field)}:${token}}`;
}

/** Replaces a top-level field by a raw token (JSON keeps the last duplicate key). */
function rawField(field: string, token: fc.Arbitrary<string>): fc.Arbitrary<Poison> {
  return token.map((t) => ({ raw: setRaw(field, t) }));
}

function commonPoisons(stringFields: string[], requiredFields: string[], freeObject?: string): fc.Arbitrary<Poison>[] {
  const poisons: fc.Arbitrary<Poison>[] = [
    fc.tuple(fc.constantFrom(...stringFields), poisonString).map(([f, s]) => ({ apply: (b: Body) => void (b[f] = s) })),
    fc.tuple(fc.constantFrom(...stringFields), wrongType).map(([f, v]) => ({ apply: (b: Body) => void (b[f] = v) })),
    fc.tuple(fc.constantFrom(...stringFields), deepValue).map(([f, v]) => ({ apply: (b: Body) => void (b[f] = v) })),
    fc.string({ minLength: 1, maxLength: 10 }).map((name) => ({ apply: (b: Body) => void (b[`x_${name}`] = 1) })),
    fc.tuple(reservedKey, fc.oneof(fc.constant('{}'), fc.constant('1'), fc.constant('{"polluted":true}'))).map(([key, value]) => ({ raw: (json: string) => `{${JSON.stringify(key)}:${value},${json.slice(1)}` })),
    fc.tuple(fc.constantFrom(...stringFields), poisonString).map(([f, s]) => ({ apply: (b: Body) => void (b[`${f}${s}`] = 'x') })),
  ];
  if (requiredFields.length) poisons.push(fc.constantFrom(...requiredFields).map((f) => ({ apply: (b: Body) => void delete b[f] })));
  if (freeObject) {
    poisons.push(
      fc.tuple(fc.string({ maxLength: 8 }), poisonString).map(([k, s]) => ({ apply: (b: Body) => void (b[freeObject] = { ok: 'fine', [k || 'k']: s }) })),
      poisonString.map((k) => ({ apply: (b: Body) => void (b[freeObject] = { [k]: 1 }) })),
      fc.tuple(reservedKey, fc.constantFrom('1', '{}', '[]')).map(([key, value]) => ({ raw: setRaw(freeObject, `{"a":1,${JSON.stringify(key)}:${value}}`) })),
      // Big finite numbers are valid metadata; these parse as ±Infinity.
      fc.constantFrom('1e400', '-1e400', '1e309').map((token) => ({ raw: setRaw(freeObject, `{"n":${token}}`) })),
      deepValue.map((v) => ({ apply: (b: Body) => void (b[freeObject] = { nested: v }) })),
      fc.integer({ min: 20_001, max: 30_000 }).map((n) => ({ apply: (b: Body) => void (b[freeObject] = { list: new Array(n).fill(0) }) })),
    );
  }
  return poisons;
}

function body(base: () => Body, poisons: fc.Arbitrary<Poison>[]): fc.Arbitrary<string> {
  return fc.array(fc.oneof(...poisons), { minLength: 1, maxLength: 3 }).map((chosen) => {
    const value = base();
    for (const p of chosen) if ('apply' in p) p.apply(value);
    let json = JSON.stringify(value);
    for (const p of chosen) if ('raw' in p) json = p.raw(json);
    return json;
  });
}

/** Percent-encodes any string, lone surrogates included (as the WTF-8 bytes a careless client would send). */
function pct(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.charCodeAt(0);
    out += char.length === 1 && code >= 0xd800 && code <= 0xdfff
      ? `%ED%${(0x80 | ((code >> 6) & 0x3f)).toString(16).toUpperCase()}%${(0x80 | (code & 0x3f)).toString(16).toUpperCase()}`
      : encodeURIComponent(char);
  }
  return out;
}

// --- the routes --------------------------------------------------------------------------------

const registerCase: fc.Arbitrary<Case> = body(
  () => registration({ serviceId: 'fz-new', metadata: { team: 'fuzz' }, healthCheck: { intervalMs: 5000 } }),
  [
    ...commonPoisons(
      ['serviceName', 'serviceId', 'vmIp', 'externalDomain', 'version', 'deploymentId', 'environment', 'region', 'namespace', 'healthCheckEndpoint'],
      ['serviceName', 'serviceId', 'vmIp', 'internalPort', 'externalDomain', 'version', 'deploymentId', 'environment', 'region'],
      'metadata',
    ),
    rawField('internalPort', fc.oneof(hugeNumber, fc.constantFrom('-0', '0', '65536', '3008.5', '"3008"', '"NaN"', 'null', '[3008]'))),
    fc.tuple(fc.constantFrom('capabilities', 'models'), poisonString).map(([f, s]) => ({ apply: (b: Body) => void (b[f] = ['ok', s]) })),
    fc.integer({ min: 65, max: 20_000 }).map((n) => ({ apply: (b: Body) => void (b['capabilities'] = new Array(n).fill('c')) })),
    fc.constantFrom('//169.254.169.254/x', '/\\evil', '/@evil', '/a/../..', '/%2E%2e/') .map((p) => ({ apply: (b: Body) => void (b['healthCheckEndpoint'] = p) })),
    fc.integer({ min: 100, max: 999 }).map((ms) => ({ apply: (b: Body) => void (b['healthCheck'] = { intervalMs: ms }) })),
    rawField('healthCheck', fc.oneof(hugeNumber.map((t) => `{"intervalMs":${t}}`), fc.constant('{"intervalMs":-0}'), fc.constant('{"__proto__":{"intervalMs":1}}'))),
    fc.tuple(fc.constantFrom('name', 'type'), poisonString).map(([f, s]) => ({ apply: (b: Body) => void (b['requiredEnvironmentVars'] = [{ name: 'A', type: 'secret', required: true, [f]: s }]) })),
  ],
).map((json) => ({ method: 'POST', url: `${BASE}/register`, body: json, expect: 'refused' }));

const modelCase: fc.Arbitrary<Case> = body(
  () => ({ modelName: 'fz-model', environment: 'development', endpoint: '10.0.0.1:8000', namespace: 'fuzz' }),
  [
    ...commonPoisons(['modelName', 'environment', 'endpoint', 'namespace'], ['modelName', 'environment']),
    rawField('dryRun', fc.oneof(hugeNumber, fc.constantFrom('"true"', '1', '{}', '[true]'))),
    fc.constantFrom('10.0.0.1:0', '10.0.0.1:70000', 'host:', ':80', '[::1]', 'a b:80').map((e) => ({ apply: (b: Body) => void (b['endpoint'] = e) })),
  ],
).map((json) => ({ method: 'POST', url: `${BASE}/models`, body: json, expect: 'refused' }));

const statusCase: fc.Arbitrary<Case> = body(
  () => ({ status: 'unhealthy', reason: 'fuzz' }),
  [
    ...commonPoisons(['status', 'adminState', 'reason'], ['status']),
    poisonString.map((s) => ({ apply: (b: Body) => void (b['reason'] = s) })),
  ],
).map((json) => ({ method: 'PUT', url: `${BASE}/${TARGET}/status`, body: json, expect: 'refused' }));

const heartbeatCase: fc.Arbitrary<Case> = body(
  () => ({ metadata: { inflight: 1, requestsPerMinute: 5 } }),
  [
    ...commonPoisons(['metadata'], [], 'metadata').slice(0, 3),
    fc.tuple(fc.constantFrom('inflight', 'requestsPerMinute', 'averageLatency', 'errorRate'), fc.oneof(hugeNumber, fc.constantFrom('-1', '-0.5', '"5"', '"NaN"', 'true', '[]', '{}', 'null'))).map(([k, t]) => ({ raw: setRaw('metadata', `{${JSON.stringify(k)}:${t}}`) })),
    fc.tuple(fc.string({ maxLength: 6 }), poisonString).map(([k, s]) => ({ apply: (b: Body) => void (b['metadata'] = { [`x${k}`]: s }) })),
    fc.tuple(reservedKey).map(([key]) => ({ raw: setRaw('metadata', `{${JSON.stringify(key)}:1}`) })),
    fc.constantFrom('1.5', '1.0000001', '2').map((t) => ({ raw: setRaw('metadata', `{"errorRate":${t}}`) })),
  ],
).map((json) => ({ method: 'POST', url: `${BASE}/${TARGET}/heartbeat`, body: json, expect: 'refused' }));

const queryValue = fc.oneof(poisonString, fc.string({ maxLength: 12 }), hugeNumber, fc.constantFrom('NaN', '-0', '0', '1001', '1e3', '-1', '', 'production', 'ready', 'healthy', 'eyJ4IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA'));
const listCase: fc.Arbitrary<Case> = fc
  .tuple(
    fc.constantFrom('services', 'models'),
    fc.array(fc.tuple(fc.constantFrom('serviceName', 'environment', 'status', 'capability', 'model', 'limit', 'cursor', 'junk', '__proto__', 'constructor'), queryValue), { minLength: 1, maxLength: 4 }),
  )
  .map(([list, pairs]) => ({ method: 'GET', url: `${BASE}/${list}?${pairs.map(([k, v]) => `${k}=${pct(v)}`).join('&')}`, expect: 'read' }));

const pathCase: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom('GET services/', 'PUT /status', 'POST /heartbeat', 'GET discover/'), fc.oneof(poisonString, fc.string({ minLength: 1, maxLength: 20 })))
  .map(([route, id]) => {
    const [method, shape] = route.split(' ') as ['GET' | 'PUT' | 'POST', string];
    const url = shape.startsWith('/') ? `${BASE}/${pct(id)}${shape}` : `${BASE}/${shape}${pct(id)}`;
    return { method, url, body: method === 'GET' ? undefined : JSON.stringify(method === 'PUT' ? { status: 'offline' } : {}), expect: method === 'GET' ? 'read' : 'unknown' } as Case;
  });

// --- the run -------------------------------------------------------------------------------------

describe('REST fuzz: hostile input is refused with a field, never 5xx, and writes nothing', () => {
  let api: RunningRegistryApi;
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    api = await startRegistryApi('fuzz');
    expect((await api.http('POST', `${BASE}/register`, registration({ serviceId: TARGET }), writeHeaders)).status).toBe(201);
    await api.settledEvents();
  });
  afterAll(async () => {
    console.log(`[fuzz] seed ${SEED}: ${[...statuses].sort().map(([s, n]) => `${s}×${n}`).join(', ')}`);
    await api?.close();
  });

  async function send(c: Case): Promise<void> {
    const res = await api.app.inject({
      method: c.method,
      url: c.url,
      headers: { ...writeHeaders, ...(c.body === undefined ? {} : { 'content-type': 'application/json' }) },
      payload: c.body,
    });
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    const what = `${c.method} ${c.url} ${c.body?.slice(0, 300) ?? ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    if (res.statusCode >= 500) throw new Error(`5xx: ${what}`);
    if (c.expect === 'refused' && res.statusCode !== 400 && res.statusCode !== 413) throw new Error(`not refused: ${what}`);
    if (c.expect === 'read' && ![200, 400, 404].includes(res.statusCode)) throw new Error(`unexpected: ${what}`);
    if (c.expect === 'unknown' && ![400, 404].includes(res.statusCode)) throw new Error(`unexpected: ${what}`);
    if (res.statusCode === 400 || res.statusCode === 413) {
      const errors = (res.json() as { errors?: { field?: unknown; reason?: unknown }[] }).errors;
      const named = Array.isArray(errors) && errors.length > 0 && errors.every((e) => typeof e.field === 'string' && e.field !== '' && typeof e.reason === 'string');
      if (!named) throw new Error(`a refusal without a field: ${what}`);
    }
  }

  it('refuses bodies that are not an object at all', async () => {
    const before = await api.writeState();
    const bodies = ['null', '[]', '"text"', '1', 'true', '{', '{"a":1', '\u0000', '[{"serviceId":"x"}]', '{"a":"\\ud800"}'];
    for (const url of [`${BASE}/register`, `${BASE}/models`, `${BASE}/${TARGET}/heartbeat`, `${BASE}/models/enable`]) {
      for (const body of bodies) await send({ method: 'POST', url, body, expect: 'refused' });
    }
    for (const body of bodies) await send({ method: 'PUT', url: `${BASE}/${TARGET}/status`, body, expect: 'refused' });
    expect(await api.writeState()).toEqual(before);
  });

  it.each([
    ['POST /register', registerCase, 1500],
    ['POST /models', modelCase, 600],
    ['PUT /:serviceId/status', statusCase, 500],
    ['POST /:serviceId/heartbeat', heartbeatCase, 500],
    ['GET /services and /models with hostile queries', listCase, 800],
    ['hostile path parameters', pathCase, 300],
  ])('%s', async (_, arbitrary, runs) => {
    const before = await api.writeState();
    const target = (await api.http('GET', `${BASE}/services/${TARGET}`)).body.service;
    await fc.assert(fc.asyncProperty(arbitrary as fc.Arbitrary<Case>, send), { seed: SEED, numRuns: runs * RUNS, endOnFailure: false });

    // Nothing written: revision, rows and outbox as before, and the target's liveness untouched.
    await api.app.get(HeartbeatBatcherService).flush();
    expect(await api.writeState()).toEqual(before);
    expect(before.outbox).toBe(0);
    const after = await waitFor(async () => (await api.http('GET', `${BASE}/services/${TARGET}`)).body.service, 5000, 'the target instance');
    expect({ lastSeen: after.lastSeen, load: after.load, status: after.status }).toEqual({ lastSeen: target.lastSeen, load: target.load, status: target.status });
  });
});
