import type { FleetStore } from './fleet-store';

/** The SSE messages of one text block (`event:` + `data:` lines); comments and `retry:` are skipped. */
export function parseSseBlock(block: string): { event: string; data: string } | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return data.length ? { event, data: data.join('\n') } : undefined;
}

/**
 * Reads `/console/api/events` with fetch (EventSource cannot send a header, and the read token must
 * never be in a URL) and applies each message to the store; reconnects with backoff, at once after a
 * `resync`. Returns a function that stops it.
 */
export function connectFeed(store: FleetStore, token: () => string | null): () => void {
  let stopped = false;
  let controller: AbortController | undefined;
  let attempt = 0;

  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      let resync = false;
      try {
        const headers: Record<string, string> = {};
        const t = token();
        if (t) headers['X-Registry-Token'] = t;
        const response = await fetch('/console/api/events', { headers, signal: controller.signal, cache: 'no-store' });
        if (response.status === 401 || response.status === 403) {
          const body = (await response.json().catch(() => ({}))) as { message?: string };
          store.setState('unauthorized', body.message ?? `HTTP ${response.status}`);
          return;
        }
        if (!response.ok || !response.body) {
          const body = (await response.json().catch(() => ({}))) as { message?: string };
          store.setState(response.status === 503 ? 'busy' : 'reconnecting', body.message ?? `HTTP ${response.status}`);
        } else {
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            buffer += value;
            let end: number;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const message = parseSseBlock(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
              if (!message) continue;
              if (message.event === 'resync') resync = true;
              else apply(store, message.event, message.data);
              if (message.event === 'snapshot') attempt = 0;
            }
          }
        }
      } catch (error) {
        if (stopped) return;
        store.setState('reconnecting', (error as Error).message);
      }
      if (stopped) return;
      const wait = resync ? 0 : Math.min(5000, 500 * 2 ** attempt++);
      store.setState('reconnecting', resync ? 'fell behind the feed; taking a fresh snapshot' : `connection lost; retrying in ${Math.round(wait / 100) / 10} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

function apply(store: FleetStore, event: string, data: string): void {
  const body = JSON.parse(data);
  switch (event) {
    case 'snapshot':
      store.snapshot(body.revision, body.instances);
      store.setState('live');
      break;
    case 'registered':
    case 'statusChanged':
      store.upsert(body.revision, body.instance);
      break;
    case 'deregistered':
      store.remove(body.revision, body.id);
      break;
    case 'load':
      store.load(body.updates);
      break;
    case 'metrics':
      store.addMetrics(body);
      break;
  }
}
