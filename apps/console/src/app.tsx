import { useCallback, useDeferredValue, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { Action, tokens } from './api';
import { ConfirmDialog, ReadTokenDialog } from './dialogs';
import { connectFeed } from './feed-client';
import { MODEL_STATUSES, HEALTH_STATUSES, ADMIN_STATES } from './feed.types';
import { FleetList } from './fleet-list';
import { FleetStore } from './fleet-store';
import { fleetRows, Filters, modelRows, NO_FILTERS } from './filter.util';
import { num } from './format.util';
import { MetricsPanel } from './metrics-panel';

type Theme = 'system' | 'light' | 'dark';
const THEME_KEY = 'switchboard.console.theme';

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(THEME_KEY) as Theme | null) ?? 'system');
  useEffect(() => {
    if (theme === 'system') delete document.documentElement.dataset['theme'];
    else document.documentElement.dataset['theme'] = theme;
    localStorage.setItem(THEME_KEY, theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === 'system' ? 'light' : t === 'light' ? 'dark' : 'system'))];
}

const STATE_TEXT = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting', unauthorized: 'Not authorised', busy: 'Feed busy' } as const;

export function App() {
  const store = useMemo(() => new FleetStore(), []);
  useSyncExternalStore(store.subscribe, store.getVersion);
  const [feedKey, setFeedKey] = useState(0);
  useEffect(() => connectFeed(store, tokens.read), [store, feedKey]);

  const [theme, toggleTheme] = useTheme();
  const [view, setView] = useState<'fleet' | 'models'>('fleet');
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const deferredFilters = useDeferredValue(filters);
  const [action, setAction] = useState<Action>();
  const [notice, setNotice] = useState<string>();
  const opener = useRef<HTMLElement | null>(null);

  const instances = store.instances;
  const version = store.version;
  const rows = useMemo(() => (view === 'fleet' ? fleetRows(instances.values(), deferredFilters) : modelRows(instances.values(), deferredFilters)), [instances, version, view, deferredFilters]);
  const options = useMemo(() => {
    const envs = new Set<string>();
    const services = new Set<string>();
    const models = new Set<string>();
    for (const i of instances.values()) {
      envs.add(i.env);
      services.add(i.service);
      for (const m of i.models) models.add(m);
    }
    return { envs: [...envs].sort(), services: [...services].sort(), models: [...models].sort() };
  }, [instances, version]);

  const onAction = useCallback((next: Action, from: HTMLElement) => {
    opener.current = from;
    setNotice(undefined);
    setAction(next);
  }, []);
  const closeDialog = (done?: string) => {
    setAction(undefined);
    if (done) setNotice(done);
  };
  // Focus goes back to the opener once the dialog has left the page: while the modal <dialog> is
  // still there, everything outside it is inert and focus() does nothing (a close after the API call
  // commits in a later task, so a timer or animation frame could fire before it).
  useEffect(() => {
    const back = opener.current;
    if (action || !back) return;
    opener.current = null;
    // The row may have re-rendered; focus the same button if it is still in the page.
    if (document.contains(back)) back.focus();
    else if (back.getAttribute('aria-label')) document.querySelector<HTMLElement>(`[aria-label="${CSS.escape(back.getAttribute('aria-label') as string)}"]`)?.focus();
  }, [action]);

  const set = (patch: Partial<Filters>) => setFilters((f) => ({ ...f, ...patch }));
  const shown = rows.filter((r) => r.type === 'instance' || r.type === 'deployment').length;

  return (
    <div className="app">
      <header className="top">
        <h1>Switchboard console</h1>
        <p className={`feed-status s-${store.state}`} role="status" aria-live="polite" data-testid="feed-status" data-state={store.state}>
          <span className="dot" aria-hidden="true" /> {STATE_TEXT[store.state]}
          {store.state === 'live' ? ` · ${num(instances.size)} instances · revision ${num(store.revision)}` : store.detail ? ` · ${store.detail}` : ''}
        </p>
        <div className="top-actions">
          <button type="button" onClick={(e) => onAction({ kind: 'health-checks' }, e.currentTarget)}>
            Run health checks
          </button>
          <button type="button" onClick={toggleTheme} aria-label={`Theme: ${theme}. Switch theme`}>
            Theme: {theme}
          </button>
        </div>
      </header>
      {notice && (
        <p className="notice" role="status" data-testid="notice">
          {notice} <button type="button" className="link" onClick={() => setNotice(undefined)} aria-label="Dismiss notice">×</button>
        </p>
      )}
      <MetricsPanel store={store} />
      <section className="panel fleet" aria-label="Fleet">
        <div className="toolbar">
          <div role="tablist" aria-label="View">
            <button type="button" role="tab" aria-selected={view === 'fleet'} onClick={() => setView('fleet')}>
              Services
            </button>
            <button type="button" role="tab" aria-selected={view === 'models'} onClick={() => setView('models')}>
              Models
            </button>
          </div>
          <label>
            Search <input type="search" value={filters.query} onChange={(e) => set({ query: e.target.value })} placeholder="id, service, url, version…" />
          </label>
          <Select label="Environment" value={filters.environment} options={options.envs} onChange={(environment) => set({ environment })} />
          <Select label="Status" value={filters.status} options={view === 'models' ? MODEL_STATUSES : [...HEALTH_STATUSES, ...ADMIN_STATES]} onChange={(status) => set({ status })} />
          <Select label="Service" value={filters.service} options={options.services} onChange={(service) => set({ service })} />
          <Select label="Model" value={filters.model} options={options.models} onChange={(model) => set({ model })} />
          <span className="muted small" aria-live="polite">
            {num(shown)} shown
          </span>
        </div>
        <FleetList rows={rows} onAction={onAction} label={view === 'fleet' ? 'Environments, services and instances' : 'Models and deployments'} />
      </section>
      {action && <ConfirmDialog action={action} onClose={closeDialog} />}
      {store.state === 'unauthorized' && <ReadTokenDialog message={store.detail} onDone={() => {
            store.setState('connecting');
            setFeedKey((k) => k + 1);
          }} />}
    </div>
  );
}

function Select({ label, value, options, onChange }: { label: string; value: string; options: readonly string[]; onChange: (value: string) => void }) {
  return (
    <label>
      {label}{' '}
      <select value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">all</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}
