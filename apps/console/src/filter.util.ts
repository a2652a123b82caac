import type { ConsoleInstance } from './feed.types';

export interface Filters {
  query: string;
  environment: string;
  status: string;
  service: string;
  model: string;
}

export const NO_FILTERS: Filters = { query: '', environment: '', status: '', service: '', model: '' };

/** `status` matches the health, the admin state or the model status word. */
export function matches(instance: ConsoleInstance, f: Filters): boolean {
  if (f.environment && instance.env !== f.environment) return false;
  if (f.service && instance.service !== f.service) return false;
  if (f.model && !instance.models.includes(f.model)) return false;
  if (f.status && instance.status !== f.status && instance.admin !== f.status && instance.word !== f.status) return false;
  if (f.query) {
    const q = f.query.toLowerCase();
    const hay = `${instance.id} ${instance.service} ${instance.env} ${instance.url} ${instance.version ?? ''} ${instance.region ?? ''} ${instance.models.join(' ')}`.toLowerCase();
    if (!hay.includes(q)) return false;
  }
  return true;
}

export type Row =
  | { type: 'env'; key: string; env: string; count: number }
  | { type: 'service'; key: string; env: string; service: string; count: number }
  | { type: 'instance'; key: string; instance: ConsoleInstance }
  | { type: 'model'; key: string; env: string; model: string; count: number; ready: number }
  | { type: 'deployment'; key: string; model: string; instance: ConsoleInstance };

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Environments → services → instances, flattened into rows for the virtualised list. */
export function fleetRows(instances: Iterable<ConsoleInstance>, f: Filters): Row[] {
  const tree = new Map<string, Map<string, ConsoleInstance[]>>();
  for (const instance of instances) {
    if (!matches(instance, f)) continue;
    let services = tree.get(instance.env);
    if (!services) tree.set(instance.env, (services = new Map()));
    const list = services.get(instance.service);
    if (list) list.push(instance);
    else services.set(instance.service, [instance]);
  }
  const rows: Row[] = [];
  for (const env of [...tree.keys()].sort(byText)) {
    const services = tree.get(env) as Map<string, ConsoleInstance[]>;
    let count = 0;
    for (const list of services.values()) count += list.length;
    rows.push({ type: 'env', key: `e:${env}`, env, count });
    for (const service of [...services.keys()].sort(byText)) {
      const list = (services.get(service) as ConsoleInstance[]).sort((a, b) => byText(a.id, b.id));
      rows.push({ type: 'service', key: `s:${env}:${service}`, env, service, count: list.length });
      for (const instance of list) rows.push({ type: 'instance', key: `i:${instance.id}`, instance });
    }
  }
  return rows;
}

/** Models → deployments (one row per instance serving the model), grouped by environment. */
export function modelRows(instances: Iterable<ConsoleInstance>, f: Filters): Row[] {
  const groups = new Map<string, ConsoleInstance[]>();
  for (const instance of instances) {
    if (!instance.models.length || !matches(instance, f)) continue;
    for (const model of instance.models) {
      if (f.model && model !== f.model) continue;
      const k = `${model}\u0000${instance.env}`;
      const list = groups.get(k);
      if (list) list.push(instance);
      else groups.set(k, [instance]);
    }
  }
  const rows: Row[] = [];
  for (const k of [...groups.keys()].sort(byText)) {
    const [model, env] = k.split('\u0000');
    const list = (groups.get(k) as ConsoleInstance[]).sort((a, b) => byText(a.id, b.id));
    rows.push({ type: 'model', key: `m:${k}`, env, model, count: list.length, ready: list.filter((i) => i.word === 'ready').length });
    for (const instance of list) rows.push({ type: 'deployment', key: `d:${k}:${instance.id}`, model, instance });
  }
  return rows;
}
