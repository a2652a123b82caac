import type { FleetStore } from './fleet-store';
import { num } from './format.util';
import { Sparkline } from './sparkline';

/** Router per model, prober self-preservation, registry outbox: from the feed's `metrics` messages. */
export function MetricsPanel({ store }: { store: FleetStore }) {
  const m = store.metrics;
  const h = store.history;
  if (!m) return <section className="panel" aria-label="Metrics"><p className="muted">Waiting for the first metrics summary…</p></section>;
  const held = Object.entries(m.selfPreservation).filter(([, on]) => on);
  return (
    <section className="panel metrics" aria-label="Metrics">
      {held.length > 0 && (
        <div className="banner banner-warn" role="alert" data-testid="self-preservation">
          Self-preservation: health-prober is holding downgrades in {held.map(([env]) => env).join(', ')} (a mass failure is treated as its own problem until it ends or the hold times out).
        </div>
      )}
      <div className="metric-cards">
        <div className="card">
          <h3>Registry</h3>
          <p>
            outbox depth <strong data-testid="outbox-depth">{num(m.registry.outboxDepth)}</strong> <Sparkline values={h.outbox} label="outbox depth" />
          </p>
          <p className="muted">
            {num(m.registry.instances)} instances · revision {num(m.registry.revision)}
          </p>
        </div>
        <div className="card">
          <h3>Scrapes</h3>
          <ul className="plain">
            {[...m.routers.map((t) => ({ ...t, kind: 'router' })), ...m.probers.map((t) => ({ ...t, kind: 'prober' }))].map((t) => (
              <li key={`${t.kind}:${t.url}`}>
                <span className={`badge ${t.up ? 'b-ok' : 'b-bad'}`}>{t.up ? 'up' : 'down'}</span> {t.kind} {t.url}
                {t.error ? <span className="muted"> ({t.error})</span> : null}
              </li>
            ))}
          </ul>
        </div>
      </div>
      <table className="router-table">
        <caption>Router, per model (last {num(m.intervalSeconds, 1)} s)</caption>
        <thead>
          <tr>
            <th scope="col">model</th>
            <th scope="col">requests/s</th>
            <th scope="col">p50 / p99 latency</th>
            <th scope="col">TTFT p50 / p99</th>
            <th scope="col">errors</th>
            <th scope="col">ejected</th>
            <th scope="col">panic</th>
          </tr>
        </thead>
        <tbody>
          {m.models.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">No router traffic yet.</td>
            </tr>
          )}
          {m.models.map((r) => (
            <tr key={r.model}>
              <th scope="row">{r.model}</th>
              <td>
                {num(r.requestsPerSecond, 1)} <Sparkline values={h.rps.get(r.model) ?? []} label={`${r.model} requests per second`} />
              </td>
              <td>
                {num(r.latencyP50Ms, 1)} / {num(r.latencyP99Ms, 1)} ms <Sparkline values={h.p99.get(r.model) ?? []} label={`${r.model} p99 latency`} />
              </td>
              <td>
                {num(r.ttftP50Ms, 1)} / {num(r.ttftP99Ms, 1)} ms
              </td>
              <td>{Object.keys(r.errors).length ? Object.entries(r.errors).map(([code, n]) => `${code}: ${n}`).join(', ') : '–'}</td>
              <td>{r.ejected.length ? r.ejected.join(', ') : '–'}</td>
              <td>{r.panic ? <span className="badge b-bad">panic</span> : '–'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
