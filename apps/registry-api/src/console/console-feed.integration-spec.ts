import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest, IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

const READ_TOKEN = 'console-read-token';

interface FeedEvent {
  event: string;
  data: any;
}

/** Reads the SSE stream of `/console/api/events` into `events` as they arrive. */
async function openFeed(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const response = await fetch(`${url}/console/api/events`, { headers, signal: controller.signal });
  const events: FeedEvent[] = [];
  let ended = false;
  const done = (async () => {
    if (!response.ok || !response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    }
    ended = true;
  })();
  return {
    response,
    events,
    get ended() {
      return ended;
    },
    next: (predicate: (e: FeedEvent) => boolean, what: string) => waitFor(() => events.find(predicate), 10_000, what),
    async close() {
      controller.abort();
      await done;
    },
  };
}

function metric(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.split(' ').pop()) : 0;
}

describe('console live feed (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;
  const readHeaders = { 'x-registry-token': READ_TOKEN };

  beforeAll(async () => {
    api = await startRegistryApi('console-feed', {
      REGISTRY_READ_TOKEN: READ_TOKEN,
      CONSOLE_CLIENT_QUEUE_MAX: '5',
      CONSOLE_MAX_CLIENTS: '3',
      // Nothing listens there: the panels report the router and prober down, the feed goes on.
      CONSOLE_ROUTER_URLS: 'http://127.0.0.1:9',
      CONSOLE_PROBER_URLS: 'http://127.0.0.1:9',
      CONSOLE_SCRAPE_INTERVAL_MS: '500',
      CONSOLE_DIR: mkdtempSync(join(tmpdir(), 'console-none-')),
    });
    const created = await api.http('POST', `${BASE}/register`, registration({ serviceId: 'console-a', serviceName: 'svc-a', environment: 'staging', version: '2.1.0', region: 'fra1' }), writeHeaders);
    expect(created.status).toBe(201);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('refuses the feed without the read token (401) and with a wrong one (403), in the API error shape', async () => {
    const missing = await api.http('GET', '/console/api/events');
    expect(missing.status).toBe(401);
    expect(missing.body).toMatchObject({ success: false, error: 'TOKEN_MISSING' });
    const wrong = await api.http('GET', '/console/api/events', undefined, { 'x-registry-token': 'not-the-token' });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toMatchObject({ success: false, error: 'TOKEN_INVALID' });
  });

  it('sends the fleet first, then each registration, status change and deregistration, and metrics', async () => {
    const feed = await openFeed(api.url, readHeaders);
    try {
      expect(feed.response.headers.get('content-type')).toContain('text/event-stream');
      const snapshot = await feed.next((e) => e.event === 'snapshot', 'the snapshot');
      expect(feed.events[0].event).toBe('snapshot');
      expect(snapshot.data.instances).toEqual([
        expect.objectContaining({ id: 'console-a', service: 'svc-a', env: 'staging', status: 'healthy', admin: 'enabled', word: 'ready', version: '2.1.0', region: 'fra1' }),
      ]);

      await api.http('POST', `${BASE}/register`, registration({ serviceId: 'console-b', serviceName: 'svc-b', environment: 'production' }), writeHeaders);
      const registered = await feed.next((e) => e.event === 'registered' && e.data.instance.id === 'console-b', 'console-b registered');
      expect(registered.data.instance).toMatchObject({ service: 'svc-b', env: 'production', admin: 'enabled' });

      await api.http('PUT', `${BASE}/console-b/status`, { adminState: 'disabled', reason: 'console spec' }, writeHeaders);
      const changed = await feed.next((e) => e.event === 'statusChanged' && e.data.instance.id === 'console-b', 'console-b disabled');
      expect(changed.data.instance).toMatchObject({ admin: 'disabled', word: 'disabled', routable: false });
      expect(changed.data.revision).toBeGreaterThan(registered.data.revision);

      // A re-registration is a `registered` event, named as the registry named it, with its new details.
      await api.http('POST', `${BASE}/register`, registration({ serviceId: 'console-b', serviceName: 'svc-b', environment: 'production', version: '9.9.9' }), writeHeaders);
      const again = await feed.next((e) => e.event === 'registered' && e.data.instance.id === 'console-b' && e.data.instance.version === '9.9.9', 'console-b registered again');
      expect(again.data.instance.admin).toBe('disabled');

      await api.http('POST', `${BASE}/console-a/heartbeat`, { metadata: { requestsPerMinute: 120, inflight: 3 } }, writeHeaders);
      const load = await feed.next((e) => e.event === 'load', 'a load update');
      expect(load.data.updates).toEqual([expect.objectContaining({ id: 'console-a', load: expect.objectContaining({ rpm: 120, inflight: 3 }) })]);

      await api.http('DELETE', `${BASE}/services/console-b`, undefined, writeHeaders);
      await feed.next((e) => e.event === 'deregistered' && e.data.id === 'console-b', 'console-b deregistered');

      const metrics = await feed.next((e) => e.event === 'metrics', 'a metrics summary');
      expect(metrics.data).toMatchObject({ routers: [{ url: 'http://127.0.0.1:9', up: false }], probers: [{ up: false }], registry: { outboxDepth: expect.any(Number) } });
    } finally {
      await feed.close();
    }
  });

  it('answers 503 CONSOLE_BUSY beyond CONSOLE_MAX_CLIENTS', async () => {
    const feeds = [await openFeed(api.url, readHeaders), await openFeed(api.url, readHeaders), await openFeed(api.url, readHeaders)];
    try {
      await Promise.all(feeds.map((f) => f.next((e) => e.event === 'snapshot', 'a snapshot')));
      const refused = await api.http('GET', '/console/api/events', undefined, readHeaders);
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ error: 'CONSOLE_BUSY' });
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
    }
  });

  it('ends a client that stops reading with a final resync event once it is CONSOLE_CLIENT_QUEUE_MAX messages behind', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `console-flood-${i}`);
    for (const serviceId of ids) {
      await api.http('POST', `${BASE}/register`, registration({ serviceId, serviceName: 'flood', environment: 'development', models: Array.from({ length: 50 }, (_, m) => `model-${m}-${'x'.repeat(100)}`) }), writeHeaders);
    }
    const droppedBefore = metric(await (await fetch(`${api.url}/metrics`)).text(), 'console_clients_dropped_total{reason="behind"');
    // A client that never reads: the socket fills, then the queue.
    const stalled = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${api.url}/console/api/events`, { headers: readHeaders }, (res) => {
        res.pause();
        res.socket.pause();
        resolve(res);
      });
      req.on('error', reject);
      req.end();
    });
    expect(stalled.statusCode).toBe(200);
    const dropped = async () => metric(await (await fetch(`${api.url}/metrics`)).text(), 'console_clients_dropped_total{reason="behind"') > droppedBefore;
    let round = 0;
    await waitFor(
      async () => {
        const status = ++round % 2 ? 'degraded' : 'healthy';
        await Promise.all(ids.map((id) => api.http('PUT', `${BASE}/${id}/status`, { status }, writeHeaders)));
        return dropped();
      },
      120_000,
      'the stalled client to be dropped',
    );
    // Read what it was sent: the stream ends, and its last event is the resync.
    const text = await new Promise<string>((resolve, reject) => {
      let body = '';
      stalled.setEncoding('utf8');
      stalled.on('data', (chunk: string) => (body += chunk));
      stalled.on('end', () => resolve(body));
      stalled.on('error', reject);
      stalled.socket.resume();
      stalled.resume();
    });
    const events = [...text.matchAll(/^event: (.*)$/gm)].map((m) => m[1]);
    expect(events[0]).toBe('snapshot');
    expect(events[events.length - 1]).toBe('resync');
  });

  it('answers /console with a 404 saying how to build the console when its files are missing', async () => {
    const response = await fetch(`${api.url}/console`);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('npx nx run console:build');
  });
});

describe('console static files', () => {
  let api: RunningRegistryApi;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'console-built-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Switchboard console</title>');
    api = await startRegistryApi('console-static', { CONSOLE_DIR: dir });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('serves the built console at /console/', async () => {
    const redirect = await fetch(`${api.url}/console`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const page = await fetch(`${api.url}/console/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Switchboard console</title>');
  });
});

describe('console feed at shutdown', () => {
  it('ends open streams so registry-api closes without waiting for its viewers', async () => {
    const api = await startRegistryApi('console-shutdown');
    let closed = false;
    try {
      const feed = await openFeed(api.url, {});
      await feed.next((e) => e.event === 'snapshot', 'the snapshot');
      await api.app.close();
      closed = true;
      await waitFor(() => feed.ended, 5000, 'the stream to end');
      await feed.close();
    } finally {
      if (!closed) await api.app.close();
      await api.nats.close();
      await api.env.dispose();
    }
  }, 20_000);
});
