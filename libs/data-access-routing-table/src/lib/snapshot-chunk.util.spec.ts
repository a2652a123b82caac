import { parseSnapshotChunk, SnapshotChunkRejected, SnapshotRefused } from './snapshot-chunk.util';

const view = (patch: Record<string, unknown> = {}) => ({
  serviceId: 'svc-1',
  serviceName: 'vllm',
  environment: 'production',
  models: ['llama-3-8b'],
  internalUrl: 'http://10.0.0.1:8000',
  healthCheckEndpoint: '/health',
  healthCheck: { intervalMs: 5000, enabled: true },
  status: 'healthy',
  adminState: 'enabled',
  routable: true,
  load: { inflight: 2 },
  revision: 17,
  ...patch,
});

describe('parseSnapshotChunk', () => {
  it('accepts a routing-view chunk, a full-view one (extra fields) and one without the optional fields', () => {
    const chunk = parseSnapshotChunk({ revision: 20, instances: [view(), view({ serviceId: 'svc-2', metadata: { x: 1 }, region: 'nyc1' })], tombstones: [['gone-1', 3]] });
    expect(chunk.revision).toBe(20);
    expect(chunk.instances.map((i) => i.serviceId)).toEqual(['svc-1', 'svc-2']);
    expect(chunk.tombstones).toEqual([['gone-1', 3]]);
    const bare = parseSnapshotChunk({ revision: 1, instances: [view({ models: undefined, healthCheck: undefined, healthCheckEndpoint: undefined, load: undefined })] });
    expect(bare.instances).toHaveLength(1);
    expect(bare.tombstones).toEqual([]);
  });

  it.each([
    ['not an object', [1, 2]],
    ['no revision', { instances: [] }],
    ['a negative revision', { revision: -1, instances: [] }],
    ['a fractional revision', { revision: 1.5, instances: [] }],
    ['instances not an array', { revision: 1, instances: { 0: view() } }],
    ['an instance that is not an object', { revision: 1, instances: ['svc-1'] }],
    ['a serviceId with a subject wildcard', { revision: 1, instances: [view({ serviceId: 'a.>' })] }],
    ['a serviceName that is not a string', { revision: 1, instances: [view({ serviceName: 7 })] }],
    ['no environment', { revision: 1, instances: [view({ environment: undefined })] }],
    ['models not strings', { revision: 1, instances: [view({ models: [{}] })] }],
    ['an internalUrl that is not a string', { revision: 1, instances: [view({ internalUrl: ['http://x'] })] }],
    ['an unknown status', { revision: 1, instances: [view({ status: 'sleepy' })] }],
    ['an unknown admin state', { revision: 1, instances: [view({ adminState: 'on' })] }],
    ['a revision as a string', { revision: 1, instances: [view({ revision: '17' })] }],
    ['a check setting that is a string', { revision: 1, instances: [view({ healthCheck: { intervalMs: '5000' } })] }],
    ['a load figure that is not a number', { revision: 1, instances: [view({ load: { inflight: 'many' } })] }],
    ['a healthCheckEndpoint that is an object', { revision: 1, instances: [view({ healthCheckEndpoint: { path: '/' } })] }],
    ['tombstones not pairs', { revision: 1, instances: [], tombstones: [['gone-1']] }],
    ['a tombstone revision that is not a number', { revision: 1, instances: [], tombstones: [['gone-1', 'x']] }],
  ])('refuses a chunk with %s', (_case, value) => {
    expect(() => parseSnapshotChunk(value)).toThrow(SnapshotChunkRejected);
  });

  it('names the instance and field it refused', () => {
    expect(() => parseSnapshotChunk({ revision: 1, instances: [view(), view({ status: 'sleepy' })] })).toThrow('malformed snapshot chunk: instances[1].status');
  });

  it("tells the registry's refusal from a malformed chunk", () => {
    expect(() => parseSnapshotChunk({ ok: false, error: { code: 'COMMAND_FAILED', message: 'database down' } })).toThrow(new SnapshotRefused('database down'));
  });
});
