import type { ConsoleInstance } from './feed.types';
import { fleetRows, matches, modelRows, NO_FILTERS } from './filter.util';

function instance(id: string, over: Partial<ConsoleInstance> = {}): ConsoleInstance {
  return { id, service: 'svc', env: 'production', models: [], status: 'healthy', admin: 'enabled', word: 'ready', routable: true, revision: 1, url: `http://${id}:8000`, version: '1.0.0', region: 'fra1', lastSeen: null, load: {}, ...over };
}

describe('console filters and rows', () => {
  const fleet = [
    instance('b-2', { service: 'beta', env: 'staging' }),
    instance('a-1', { service: 'alpha', models: ['llama'], status: 'degraded', word: 'degraded' }),
    instance('a-2', { service: 'alpha', models: ['llama', 'mistral'], admin: 'disabled', word: 'disabled', routable: false }),
    instance('b-1', { service: 'beta', env: 'staging', region: 'nyc1' }),
  ];

  it('groups environments → services → instances, each level sorted', () => {
    expect(fleetRows(fleet, NO_FILTERS).map((r) => r.key)).toEqual(['e:production', 's:production:alpha', 'i:a-1', 'i:a-2', 'e:staging', 's:staging:beta', 'i:b-1', 'i:b-2']);
  });

  it('filters by status word, health or admin state, and searches every shown field', () => {
    expect(fleet.filter((i) => matches(i, { ...NO_FILTERS, status: 'disabled' })).map((i) => i.id)).toEqual(['a-2']);
    expect(fleet.filter((i) => matches(i, { ...NO_FILTERS, status: 'degraded' })).map((i) => i.id)).toEqual(['a-1']);
    expect(fleet.filter((i) => matches(i, { ...NO_FILTERS, query: 'NYC1' })).map((i) => i.id)).toEqual(['b-1']);
    expect(fleet.filter((i) => matches(i, { ...NO_FILTERS, environment: 'staging', service: 'beta' })).map((i) => i.id)).toEqual(['b-2', 'b-1']);
  });

  it('lists models → deployments per environment with how many are ready', () => {
    const rows = modelRows(fleet, NO_FILTERS);
    expect(rows.map((r) => r.key)).toEqual(['m:llama\u0000production', 'd:llama\u0000production:a-1', 'd:llama\u0000production:a-2', 'm:mistral\u0000production', 'd:mistral\u0000production:a-2']);
    expect(rows[0]).toMatchObject({ type: 'model', count: 2, ready: 0 });
    expect(modelRows(fleet, { ...NO_FILTERS, model: 'mistral' }).map((r) => r.key)).toEqual(['m:mistral\u0000production', 'd:mistral\u0000production:a-2']);
  });
});
