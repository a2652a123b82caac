import { SubjectSpace } from '@switchboard/contracts';
import { decodeJson, NatsClient } from '@switchboard/messaging';
import { waitFor } from '@switchboard/testing';
import { REGISTRY_TOKEN, RunningApp, startApp } from './system.util';

export const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
export const REGISTRY = '/api/v2/services/registry';

/** One message of the REGISTRY stream, as a consumer receives it. */
export interface StreamedEvent {
  seq: number;
  subject: string;
  msgId?: string;
  revision: number;
  serviceId?: string;
}

/** Every message on `<prefix>_REGISTRY`, in stream order (what a JetStream consumer replaying it sees). */
export async function registryStream(nats: NatsClient, subjects: SubjectSpace): Promise<StreamedEvent[]> {
  const jsm = await nats.jsm();
  const info = await jsm.streams.info(subjects.registryStream);
  const events: StreamedEvent[] = [];
  if (!info.state.messages) return events;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(subjects.registryStream, { seq });
    // A CloudEvents envelope: `subject` is the serviceId, `data.revision` the registry's revision.
    const event = decodeJson(msg.data) as { subject?: string; data: { revision: number } };
    events.push({ seq, subject: msg.subject, msgId: msg.header?.get('Nats-Msg-Id'), revision: event.data.revision, serviceId: event.subject });
  }
  return events;
}

/** registry-api as a process on this NATS and database (an own port each call, unless PORT is given). */
export function startRegistry(natsUrl: string, subjectPrefix: string, databaseUrl: string, env: Record<string, string> = {}): Promise<RunningApp> {
  return startApp(REGISTRY_MAIN, {
    NATS_URL: natsUrl,
    SUBJECT_PREFIX: subjectPrefix,
    DATABASE_URL: databaseUrl,
    DATABASE_CREATE_IF_MISSING: 'false',
    CACHE_ENABLED: 'false',
    HEARTBEAT_FLUSH_INTERVAL_MS: '50',
    OUTBOX_SWEEP_INTERVAL_MS: '200',
    ...env,
  });
}

export async function registryCall(app: RunningApp, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'x-registry-token': REGISTRY_TOKEN },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
}

/** Registers (or re-registers) `serviceId` through `app`; returns the committed revision. */
export async function register(app: RunningApp, serviceId: string, version = '1.0.0'): Promise<number> {
  const res = await registryCall(app, 'POST', `${REGISTRY}/register`, {
    serviceName: 'crash-svc',
    serviceId,
    vmIp: '127.0.0.1',
    internalPort: 9,
    externalDomain: `${serviceId}.example.com`,
    version,
    deploymentId: 'e2e',
    environment: 'development',
    region: 'local',
    models: ['crash-model'],
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`registering ${serviceId} through ${app.url} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.service.revision as number;
}

export async function routerTable(router: RunningApp): Promise<{ revision: number; instances: number }> {
  return ((await (await fetch(`${router.url}/health`)).json()) as { table: { revision: number; instances: number } }).table;
}

export async function waitForRouterRevision(router: RunningApp, revision: number, timeoutMs = 30_000): Promise<{ revision: number; instances: number }> {
  return waitFor(async () => {
    const table = await routerTable(router).catch(() => undefined);
    return table && table.revision >= revision ? table : undefined;
  }, timeoutMs, `the router's table at revision ${revision}`);
}
