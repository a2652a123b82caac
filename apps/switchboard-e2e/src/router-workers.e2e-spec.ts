import { request as httpRequest } from 'node:http';
import { waitFor } from '@switchboard/testing';
import { System } from './support/system.util';

const MODEL = 'llama-2-7b';

/** One request on a connection of its own (the cluster's primary hands each new connection to a worker in turn). */
function onNewConnection(url: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}${path}`,
      {
        method: body === undefined ? 'GET' : 'POST',
        agent: false,
        headers: { connection: 'close', ...(body === undefined ? {} : { 'content-type': 'application/json', authorization: 'Bearer sk-e2e-key-0123456789' }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function childPids(pid: number): Promise<number[]> {
  return import('node:fs').then(({ readFileSync }) => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

describe('llm-router with ROUTER_WORKERS=2 (node:cluster)', () => {
  let system: System;
  let revision: number;

  beforeAll(async () => {
    system = await System.start('router-workers', {}, { ROUTER_WORKERS: '2' });
    await system.addBackend('vllm-w', [MODEL], { completionTokens: 3 });
    revision = (await system.routerHealth()).table.revision;
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('serves from two worker processes, each with its own table fed from the registry', async () => {
    const primary = Number(system.router.process.pid);
    const workers = new Set<number>();
    // Each worker loads the table on its own: wait until two distinct ones (children of the primary) have the instance.
    await waitFor(async () => {
      const { status, json } = await onNewConnection(system.router.url, '/health');
      if (status === 200 && json.table.revision >= revision && json.table.instances === 1) workers.add(json.pid);
      return workers.size === 2;
    }, 20_000, 'two workers with the instance in their table');
    expect(workers.has(primary)).toBe(false);
    expect((await childPids(primary)).sort()).toEqual([...workers].sort());
  });

  it('routes chat completions on new connections, which the primary spreads over the workers', async () => {
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello workers' }] });
    const answers = await Promise.all(Array.from({ length: 6 }, () => onNewConnection(system.router.url, '/v1/chat/completions', body)));
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.json.object).toBe('chat.completion');
    }
    expect(answers).toHaveLength(6);
  });

  it('stops on SIGTERM: the primary forwards it, the workers drain and exit, the primary exits 0 after them', async () => {
    const primary = system.router.process;
    const workers = await childPids(Number(primary.pid));
    expect(workers).toHaveLength(2);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => primary.once('exit', (code, signal) => resolve({ code, signal })));
    primary.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    const alive = workers.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  });
});
