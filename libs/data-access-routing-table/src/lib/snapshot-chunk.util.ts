import { ADMIN_STATES, AdminState, HEALTH_STATUSES, HealthCheckSettings, HealthStatus, LoadFigures, SUBJECT_TOKEN_PATTERN } from '@switchboard/contracts';

/**
 * One snapshot chunk, checked. The snapshot is registry-api's answer to our own request (only it may
 * subscribe to `registry.cmd.>`), and a chunk is bounded by the server's max_payload, so it is not
 * run through class-validator (at 100,000 instances that alone took seconds): each field the table
 * keeps is type-checked here, in one pass, and the chunk is refused whole if one is wrong.
 */
export interface SnapshotChunk {
  revision: number;
  instances: SnapshotInstance[];
  tombstones: [string, number][];
}

/** What a routing table keeps of an instance (`registry.cmd.snapshot` with `{ view: 'routing' }`); older registries omit the optional ones. */
export interface SnapshotInstance {
  serviceId: string;
  serviceName: string;
  environment: string;
  models?: string[];
  internalUrl: string;
  healthCheckEndpoint?: string;
  healthCheck?: HealthCheckSettings;
  status: HealthStatus;
  adminState: AdminState;
  revision: number;
  load?: LoadFigures;
}

/** A chunk that is not a snapshot chunk: refused (counted by the table), the snapshot is taken again. */
export class SnapshotChunkRejected extends Error {
  constructor(reason: string) {
    super(`malformed snapshot chunk: ${reason}`);
    this.name = 'SnapshotChunkRejected';
  }
}

/** The registry answered the request with an error instead of chunks. */
export class SnapshotRefused extends Error {
  constructor(message: string) {
    super(`snapshot refused: ${message}`);
    this.name = 'SnapshotRefused';
  }
}

const STATUSES: ReadonlySet<unknown> = new Set(HEALTH_STATUSES);
const ADMIN: ReadonlySet<unknown> = new Set(ADMIN_STATES);
const MAX_MODELS = 1000;
const MAX_TEXT = 2048;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRevision = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isToken = (v: unknown): v is string => typeof v === 'string' && SUBJECT_TOKEN_PATTERN.test(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_TEXT;

export function parseSnapshotChunk(value: unknown): SnapshotChunk {
  if (!isObject(value)) throw new SnapshotChunkRejected('not an object');
  if ('error' in value) {
    const error = value['error'];
    throw new SnapshotRefused(isObject(error) && typeof error['message'] === 'string' ? error['message'].slice(0, 300) : 'unknown error');
  }
  const { revision, instances, tombstones } = value;
  if (!isRevision(revision)) throw new SnapshotChunkRejected('revision is not a non-negative integer');
  if (!Array.isArray(instances)) throw new SnapshotChunkRejected('instances is not an array');
  const checked: SnapshotInstance[] = new Array(instances.length);
  for (let i = 0; i < instances.length; i++) checked[i] = snapshotInstance(instances[i], i);
  const dead: [string, number][] = [];
  if (tombstones !== undefined) {
    if (!Array.isArray(tombstones)) throw new SnapshotChunkRejected('tombstones is not an array');
    for (const t of tombstones) {
      if (!Array.isArray(t) || t.length !== 2 || !isToken(t[0]) || !isRevision(t[1])) throw new SnapshotChunkRejected('a tombstone is not [serviceId, revision]');
      dead.push([t[0], t[1]]);
    }
  }
  return { revision, instances: checked, tombstones: dead };
}

function snapshotInstance(v: unknown, index: number): SnapshotInstance {
  const bad = (field: string) => new SnapshotChunkRejected(`instances[${index}].${field}`);
  if (!isObject(v)) throw bad('(not an object)');
  if (!isToken(v['serviceId'])) throw bad('serviceId');
  if (!isToken(v['serviceName'])) throw bad('serviceName');
  if (!isToken(v['environment'])) throw bad('environment');
  const models = v['models'] ?? [];
  if (!Array.isArray(models) || models.length > MAX_MODELS || !models.every(isText)) throw bad('models');
  if (!isText(v['internalUrl'])) throw bad('internalUrl');
  const endpoint = v['healthCheckEndpoint'] ?? '/health';
  if (!isText(endpoint)) throw bad('healthCheckEndpoint');
  const healthCheck = v['healthCheck'] ?? {};
  if (!isObject(healthCheck) || !Object.values(healthCheck).every((x) => typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)))) throw bad('healthCheck');
  if (!STATUSES.has(v['status'])) throw bad('status');
  if (!ADMIN.has(v['adminState'])) throw bad('adminState');
  if (!isRevision(v['revision'])) throw bad('revision');
  const load = v['load'] ?? {};
  if (!isObject(load) || !Object.values(load).every((x) => typeof x === 'number' && Number.isFinite(x))) throw bad('load');
  // Checked, not copied: the table makes its own entry of it (defaults included) and drops the rest.
  return v as unknown as SnapshotInstance;
}
