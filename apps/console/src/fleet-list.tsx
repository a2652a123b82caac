import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, useState } from 'react';
import type { Action } from './api';
import type { ConsoleInstance } from './feed.types';
import type { Row } from './filter.util';
import { num, percent, relativeTime } from './format.util';

const HEIGHT: Record<Row['type'], number> = { env: 40, service: 34, model: 40, instance: 56, deployment: 56 };

/** Ticks once a second so "last seen" stays true (only the visible rows re-render). */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** Rows of a flattened tree, virtualised: only what is on screen is in the DOM, at 10,000 instances too. */
export function FleetList({ rows, onAction, label }: { rows: Row[]; onAction: (action: Action, opener: HTMLElement) => void; label: string }) {
  const parent = useRef<HTMLDivElement>(null);
  const now = useNow();
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parent.current,
    estimateSize: (i) => HEIGHT[rows[i].type],
    getItemKey: (i) => rows[i].key,
    overscan: 8,
  });
  return (
    <div ref={parent} className="fleet-scroll" role="region" aria-label={label} tabIndex={0}>
      <div role="list" style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
        {virtualizer.getVirtualItems().map((item) => {
          const row = rows[item.index];
          return (
            <div key={item.key} role="listitem" className={`row row-${row.type}`} style={{ position: 'absolute', top: 0, left: 0, right: 0, height: item.size, transform: `translateY(${item.start}px)` }}>
              <RowView row={row} now={now} onAction={onAction} />
            </div>
          );
        })}
      </div>
      {rows.length === 0 && <p className="muted empty">Nothing matches.</p>}
    </div>
  );
}

function RowView({ row, now, onAction }: { row: Row; now: number; onAction: (action: Action, opener: HTMLElement) => void }) {
  switch (row.type) {
    case 'env':
      return (
        <h2 className="group-env">
          {row.env} <span className="muted">{num(row.count)} instances</span>
        </h2>
      );
    case 'service':
      return (
        <h3 className="group-service">
          {row.service} <span className="muted">{num(row.count)}</span>
        </h3>
      );
    case 'model':
      return (
        <div className="group-model">
          <h2>
            {row.model} <span className="muted">in {row.env} · {row.ready} of {row.count} ready</span>
          </h2>
          <span className="actions">
            {(['enable', 'disable', 'deregister'] as const).map((verb) => (
              <button key={verb} type="button" className={verb === 'deregister' ? 'danger' : ''} onClick={(e) => onAction({ kind: 'model', verb, modelName: row.model, environment: row.env }, e.currentTarget)} aria-label={`${verb} model ${row.model} in ${row.env}`}>
                {verb}
              </button>
            ))}
          </span>
        </div>
      );
    case 'instance':
    case 'deployment':
      return <InstanceRow instance={row.instance} now={now} onAction={onAction} word={row.type === 'deployment'} />;
  }
}

function InstanceRow({ instance: i, now, onAction, word }: { instance: ConsoleInstance; now: number; onAction: (action: Action, opener: HTMLElement) => void; word: boolean }) {
  // Always the same four buttons, so the tab order and the focus stay put when the state changes; the
  // one that would change nothing is aria-disabled (still focusable, unlike `disabled`).
  const current = { enable: 'enabled', disable: 'disabled', drain: 'draining', deregister: '' } as const;
  return (
    <div className="instance" data-testid="instance-row" data-instance-id={i.id} data-status={i.status} data-admin={i.admin} data-word={i.word}>
      <div className="instance-main">
        <span className="instance-id">{i.id}</span>
        {word ? (
          <span className={`badge w-${i.word}`} data-testid="status-word">{i.word}</span>
        ) : (
          <>
            <span className={`badge h-${i.status}`} data-testid="health">{i.status}</span>
            <span className={`badge a-${i.admin}`} data-testid="admin">{i.admin}</span>
          </>
        )}
        <span className="muted small">
          {i.version ? `v${i.version}` : ''} {i.region ?? ''} · rev {i.revision}
        </span>
      </div>
      <div className="instance-meta small">
        <span title="requests per minute">{num(i.load.rpm)} rpm</span>
        <span title="average latency">{num(i.load.latency)} ms</span>
        <span title="error rate">{percent(i.load.errorRate)} err</span>
        <span title="in flight">{num(i.load.inflight)} inflight</span>
        <span title={i.lastSeen ? new Date(i.lastSeen).toISOString() : 'never'}>seen {relativeTime(i.lastSeen, now)}</span>
        <span className="muted url">{i.url}</span>
      </div>
      <span className="actions">
        {(['enable', 'disable', 'drain', 'deregister'] as const).map((verb) => (
          <button
            key={verb}
            type="button"
            className={verb === 'deregister' ? 'danger' : ''}
            aria-label={`${verb} ${i.id}`}
            aria-disabled={current[verb] === i.admin}
            title={current[verb] === i.admin ? `already ${i.admin}` : undefined}
            onClick={(e) => current[verb] !== i.admin && onAction({ kind: 'instance', verb, serviceId: i.id, serviceName: i.service, environment: i.env }, e.currentTarget)}
          >
            {verb}
          </button>
        ))}
      </span>
    </div>
  );
}
