import { RevisionGuard, RevisionRejectReason } from './revision-guard.util';

/** A registry whose answers the test releases by hand. */
function fakeRegistry() {
  const calls: ((revision: number) => void)[] = [];
  return {
    calls,
    ask: () => new Promise<number>((resolve) => calls.push(resolve)),
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('RevisionGuard', () => {
  it('applies revisions within the window at once and rejects a forged one the registry never reached, logging once per interval', async () => {
    const registry = fakeRegistry();
    const rejected: RevisionRejectReason[] = [];
    const warnings: string[] = [];
    const guard = new RevisionGuard({ maxAhead: 100, askRegistry: registry.ask, minSpacingMs: 0, onReject: (r) => rejected.push(r), logger: { warn: (m) => warnings.push(m) } });
    guard.observe(50);
    expect(guard.plausible(150)).toBe(true);
    expect(guard.plausible(151)).toBe(false);

    const first = guard.verify(9_999_999);
    await flush();
    registry.calls[0](60);
    expect(await first).toEqual({ ok: false, reason: 'ahead_of_registry' });
    const second = guard.verify(9_999_998);
    await flush();
    registry.calls[1](60);
    expect(await second).toEqual({ ok: false, reason: 'ahead_of_registry' });
    expect(rejected).toEqual(['ahead_of_registry', 'ahead_of_registry']);
    expect(warnings).toHaveLength(1);
    expect(guard.verified).toBe(60);
  });

  it('decides with a request sent after the event arrived, shared by every event waiting meanwhile', async () => {
    const registry = fakeRegistry();
    const guard = new RevisionGuard({ maxAhead: 10, askRegistry: registry.ask, minSpacingMs: 0 });
    const early = guard.verify(500);
    await flush();
    expect(registry.calls).toHaveLength(1);
    // Arrive while the first request is in flight: its answer may predate their commit.
    const late = [guard.verify(700), guard.verify(800), guard.verify(900)];
    registry.calls[0](600);
    expect(await early).toEqual({ ok: true });
    await flush();
    expect(registry.calls).toHaveLength(2);
    registry.calls[1](850);
    expect(await Promise.all(late)).toEqual([{ ok: true }, { ok: true }, { ok: false, reason: 'ahead_of_registry' }]);
    expect(registry.calls).toHaveLength(2);
  });

  it('rejects as unverifiable when the registry does not answer', async () => {
    const guard = new RevisionGuard({ maxAhead: 10, askRegistry: () => Promise.reject(new Error('503')), minSpacingMs: 0 });
    expect(await guard.verify(1000)).toEqual({ ok: false, reason: 'unverifiable' });
  });
});
