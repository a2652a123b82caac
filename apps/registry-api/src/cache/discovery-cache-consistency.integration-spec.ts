import { seededRandom } from '@switchboard/testing';
import { CachedRegistry, startCachedRegistry, withoutLiveness } from '../testing/discovery-cache-harness.util';
import { BASE, registration, writeHeaders } from '../testing/registry-api-harness.util';

const SERVICES = ['svc-a', 'svc-b', 'svc-c', 'svc-d'];
const ENVIRONMENTS = ['production', 'staging'];
const MODELS = ['m1', 'm2', 'm3', 'm4'];
const HEALTH = ['healthy', 'degraded', 'unhealthy', 'offline'];
const ADMIN = ['enabled', 'disabled', 'draining'];
const INSTANCES = 24;
const CHANGES = 2000;
const WRITERS = 6;
const READERS = 6;

describe('discovery cache consistency under concurrent writes and reads', () => {
  let sys: CachedRegistry;
  const seed = Number(process.env['CACHE_CONSISTENCY_SEED'] ?? Date.now() % 100_000);
  const rnd = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(rnd() * items.length)];
  const http = (method: string, path: string, body?: unknown) => sys.api.http(method, path, body, method === 'GET' ? {} : writeHeaders);
  const placement = () => ({ serviceName: pick(SERVICES), environment: pick(ENVIRONMENTS), models: [...new Set([pick(MODELS), pick(MODELS)])].slice(0, 1 + Math.floor(rnd() * 2)) });
  const readKey = (key: string) => {
    const [kind, environment, name] = key.split(':');
    return kind === 'discovery'
      ? http('GET', `${BASE}/discover/${name}?environment=${environment}`)
      : http('GET', `${BASE}/models/lookup?environment=${environment}&model=${name}`);
  };
  const allKeys = ENVIRONMENTS.flatMap((env) => [...SERVICES.map((s) => `discovery:${env}:${s}`), ...MODELS.map((m) => `model_registry:${env}:${m}`)]);

  /** What PostgreSQL holds for a key, through the uncached list endpoints. */
  const truth = async (key: string) => {
    const [kind, environment, name] = key.split(':');
    if (kind === 'discovery') return withoutLiveness((await http('GET', `${BASE}/services?serviceName=${name}&environment=${environment}`)).body.services);
    const rows = (await http('GET', `${BASE}/models?environment=${environment}&model=${name}`)).body.models as { serviceId: string; modelName: string; lastSeen: string | null }[];
    return withoutLiveness(rows.filter((r) => r.modelName === name).sort((a, b) => a.serviceId.localeCompare(b.serviceId)));
  };

  /** Every value in Redis (markers are misses, not values) must equal the database. Returns how many it compared. */
  const expectCacheEqualsDatabase = async () => {
    const prefix = sys.api.env.redisKeyPrefix;
    const stored = (await sys.keys.redis.keys(`${prefix}*`)).map((k) => k.slice(prefix.length));
    let compared = 0;
    for (const key of stored) {
      const entry = await sys.keys.get(key);
      if (entry.state !== 'hit') continue;
      expect({ key, value: withoutLiveness(entry.value as []) }).toEqual({ key, value: await truth(key) });
      compared++;
    }
    return compared;
  };

  beforeAll(async () => {
    sys = await startCachedRegistry('consistency');
  });
  afterAll(async () => {
    await sys?.close();
  });

  it(`${CHANGES} random changes from ${WRITERS} writers while ${READERS} readers read: once quiet, every cached key equals the database`, async () => {
    // First, so a failing or hanging run can still be replayed.
    process.stdout.write(`[consistency] seed ${seed} (replay: CACHE_CONSISTENCY_SEED=${seed})\n`);
    const exists = new Map<string, boolean>();
    for (let i = 0; i < INSTANCES; i++) {
      const id = `cons-${i}`;
      expect((await http('POST', `${BASE}/register`, registration({ serviceId: id, ...placement() }))).status).toBe(201);
      exists.set(id, true);
    }

    let remaining = CHANGES;
    let writing = true;
    const unexpected: string[] = [];
    const writer = async () => {
      while (remaining-- > 0) {
        const id = `cons-${Math.floor(rnd() * INSTANCES)}`;
        const roll = rnd();
        let res;
        if (!exists.get(id)) {
          res = await http('POST', `${BASE}/register`, registration({ serviceId: id, ...placement() }));
          exists.set(id, true);
        } else if (roll < 0.8) {
          res = await http('PUT', `${BASE}/${id}/status`, rnd() < 0.7 ? { status: pick(HEALTH) } : { adminState: pick(ADMIN) });
        } else if (roll < 0.93) {
          res = await http('POST', `${BASE}/register`, registration({ serviceId: id, ...placement(), status: pick(HEALTH) }));
        } else {
          exists.set(id, false);
          res = await http('DELETE', `${BASE}/services/${id}`);
        }
        // A concurrent writer may have removed the instance just before: 404 is a legitimate answer.
        if (![200, 201, 404].includes(res.status)) unexpected.push(`write ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        // Bursts with gaps: readers can only fill the cache while no write is in flight.
        if (rnd() < 0.1) await new Promise((r) => setTimeout(r, 5 + rnd() * 20));
      }
    };
    let reads = 0;
    const reader = async () => {
      while (writing) {
        const res = await readKey(pick(allKeys));
        reads++;
        if (![200, 404, 503].includes(res.status)) unexpected.push(`read ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    };
    const readers = Array.from({ length: READERS }, reader);
    await Promise.all(Array.from({ length: WRITERS }, writer));
    writing = false;
    await Promise.all(readers);
    expect(unexpected).toEqual([]);
    expect(reads).toBeGreaterThan(0);

    await sys.settle();
    const comparedAtQuiet = await expectCacheEqualsDatabase();

    // Reads made now fill the cache again; what they store must be the database as well.
    for (const key of allKeys) await readKey(key);
    await sys.settle();
    const comparedAfterRefill = await expectCacheEqualsDatabase();
    expect(comparedAfterRefill).toBe(allKeys.length);
    const fills = await fillOutcomes(sys.api.url);
    // The run must have exercised the race: values stored while writes went on, and offers refused or skipped.
    expect(fills['stored']).toBeGreaterThan(0);
    expect((fills['newer_kept'] ?? 0) + (fills['writer_in_flight'] ?? 0)).toBeGreaterThan(0);
    process.stdout.write(
      `[consistency] ${reads} reads, fills ${JSON.stringify(fills)}; ${comparedAtQuiet} values compared at quiet, ${comparedAfterRefill} after refill\n`,
    );
  }, 240_000);
});

/** registry_cache_fills_total by outcome. */
async function fillOutcomes(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n').filter((l) => l.startsWith('registry_cache_fills_total'))) {
    const outcome = /outcome="([^"]+)"/.exec(line)?.[1] ?? '?';
    out[outcome] = (out[outcome] ?? 0) + Number(line.split(' ').pop());
  }
  return out;
}
