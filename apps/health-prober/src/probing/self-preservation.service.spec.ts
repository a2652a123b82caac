import { PreservationSample, PreservationSettings, SelfPreservationService } from './self-preservation.service';

const settings: PreservationSettings = {
  MASS_FAILURE_THRESHOLD: 0.6,
  MASS_FAILURE_MIN_INSTANCES: 5,
  MASS_FAILURE_WINDOW_MS: 60_000,
  MASS_FAILURE_MAX_HOLD_MS: 300_000,
};

const HOUR = 3_600_000;

type Mode = 'update' | 'track';

/**
 * `update`: the samples of every judged instance at once. `track`: the same samples reported one
 * instance at a time (instance i of the list is `<environment>-<i>`; instances of the last call
 * missing from this one are untracked), then `judge()` from the counts kept. Both must decide alike.
 */
function setup(mode: Mode) {
  let now = 10 * HOUR;
  const preservation = new SelfPreservationService(settings, () => now);
  const trackedIds = new Map<string, number>();
  const update = (samples: PreservationSample[], environment = 'production') => {
    if (mode === 'update') return preservation.update(new Map([[environment, samples]]), true);
    samples.forEach((sample, i) => preservation.track(`${environment}-${i}`, environment, sample));
    for (let i = samples.length; i < (trackedIds.get(environment) ?? 0); i++) preservation.track(`${environment}-${i}`, environment, undefined);
    trackedIds.set(environment, samples.length);
    return preservation.judge();
  };
  return {
    preservation,
    advance: (ms: number) => (now += ms),
    now: () => now,
    update,
  };
}

const healthy = (n: number): PreservationSample[] => Array.from({ length: n }, () => ({ status: 'healthy' }));
const failingSince = (n: number, since: number): PreservationSample[] => Array.from({ length: n }, () => ({ status: 'healthy', failingSince: since }));

describe.each<Mode>(['update', 'track'])('SelfPreservationService (%s)', (mode) => {
  it('holds the downgrades of a sudden wave: most of an environment starting to fail within the window', () => {
    const { preservation, now, advance, update } = setup(mode);
    const started = now();
    advance(5_000);
    const changes = update([...failingSince(7, started), ...healthy(3)]);

    expect(changes).toEqual([expect.objectContaining({ environment: 'production', cause: 'wave', failing: 7, judged: 10 })]);
    expect(preservation.holding('production')).toBe(true);
    expect(preservation.mustHold('production', 'vllm-1', started)).toBe(true);
    expect(preservation.holding('staging')).toBe(false);
    expect(preservation.mustHold('staging', 'vllm-9', started)).toBe(false);
  });

  it('does not let a standing dead majority (failing since long before the window) block a new transition', () => {
    const { preservation, now, update } = setup(mode);
    const longAgo = now() - 5 * HOUR;
    const justNow = now() - 2_000;
    // 30 dead for hours (never marked down, e.g. held by an older prober), 5 live; one live instance now fails.
    const changes = update([...failingSince(30, longAgo), ...failingSince(1, justNow), ...healthy(4)]);

    expect(changes).toEqual([]);
    expect(preservation.holding('production')).toBe(false);
    expect(preservation.mustHold('production', 'vllm-new', justNow)).toBe(false);
    expect(preservation.mustHold('production', 'vllm-dead', longAgo)).toBe(false);
  });

  it('does not count instances already unhealthy or offline', () => {
    const { preservation, now, update } = setup(mode);
    const justNow = now() - 2_000;
    const down: PreservationSample[] = [
      ...Array.from({ length: 10 }, (): PreservationSample => ({ status: 'unhealthy', failingSince: justNow })),
      ...Array.from({ length: 10 }, (): PreservationSample => ({ status: 'offline', failingSince: justNow })),
    ];
    update([...down, ...failingSince(1, justNow), ...healthy(5)]);

    expect(preservation.holding('production')).toBe(false);
    expect(preservation.mustHold('production', 'vllm-new', justNow)).toBe(false);
  });

  it('lets a standing failure through even while a wave is held', () => {
    const { preservation, now, update } = setup(mode);
    const longAgo = now() - HOUR;
    update([...failingSince(6, now() - 1_000), ...healthy(2), ...failingSince(3, longAgo)]);

    expect(preservation.holding('production')).toBe(true);
    expect(preservation.mustHold('production', 'vllm-wave', now() - 1_000)).toBe(true);
    expect(preservation.mustHold('production', 'vllm-dead', longAgo)).toBe(false);
  });

  it('ends a hold by itself after MASS_FAILURE_MAX_HOLD_MS: the held transitions are applied and not held again', () => {
    const { preservation, now, advance, update } = setup(mode);
    const started = now();
    const wave = [...failingSince(8, started), ...healthy(2)];
    update(wave);
    for (let i = 0; i < 8; i++) expect(preservation.mustHold('production', `vllm-${i}`, started)).toBe(true);

    advance(settings.MASS_FAILURE_MAX_HOLD_MS - 1);
    expect(update(wave)).toEqual([]);
    expect(preservation.mustHold('production', 'vllm-0', started)).toBe(true);

    advance(1);
    expect(update(wave)).toEqual([expect.objectContaining({ environment: 'production', cause: 'expired', held: 8, failing: 8, judged: 10 })]);
    expect(preservation.holding('production')).toBe(false);
    expect(preservation.mustHold('production', 'vllm-0', started)).toBe(false);
    // The same failures, still failing and not yet shown as unhealthy, do not start a new hold...
    advance(1_000);
    expect(update(wave)).toEqual([]);
    expect(preservation.mustHold('production', 'vllm-0', started)).toBe(false);
    // ...but a new wave among the rest would.
    const fresh = now();
    expect(update([...failingSince(8, started), ...failingSince(2, fresh), ...healthy(5)])).toEqual([]);
    expect(update([...failingSince(8, started), ...failingSince(5, fresh), ...healthy(2)])).toEqual([expect.objectContaining({ cause: 'wave', failing: 5, judged: 7 })]);
  });

  it('ends a hold when the failing share drops, and when an environment has no failing instance left', () => {
    const { preservation, now, update } = setup(mode);
    const started = now();
    update([...failingSince(6, started), ...healthy(4)]);
    expect(update([...failingSince(2, started), ...healthy(8)])).toEqual([expect.objectContaining({ cause: 'recovered' })]);

    update([...failingSince(6, started), ...healthy(4)]);
    expect(mode === 'update' ? preservation.update(new Map(), true) : update([])).toEqual([expect.objectContaining({ environment: 'production', cause: 'recovered' })]);
    expect(preservation.holding('production')).toBe(false);
  });

  it('needs MASS_FAILURE_MIN_INSTANCES: a small fleet can really lose most of itself', () => {
    const { preservation, now, update } = setup(mode);
    update([...failingSince(3, now()), ...healthy(1)]);
    expect(preservation.holding('production')).toBe(false);
  });
});

describe('SelfPreservationService.track', () => {
  it('moves an instance between environments and drops a failure from the wave once it is older than the window', () => {
    let now = 10 * HOUR;
    const preservation = new SelfPreservationService(settings, () => now);
    for (let i = 0; i < 4; i++) preservation.track(`ok-${i}`, 'staging', { status: 'healthy' });
    preservation.track('moving', 'production', { status: 'healthy', failingSince: now });
    preservation.track('moving', 'staging', { status: 'healthy', failingSince: now });
    expect(preservation.judge('production')).toEqual([]);
    // 1 of 5 failing in staging: no wave. Five more fail: 6 of 10.
    expect(preservation.judge()).toEqual([]);
    for (let i = 0; i < 5; i++) preservation.track(`fail-${i}`, 'staging', { status: 'healthy', failingSince: now });
    expect(preservation.judge()).toEqual([expect.objectContaining({ environment: 'staging', cause: 'wave', failing: 6, judged: 10 })]);
    preservation.track('moving', 'staging', undefined);
    for (let i = 0; i < 5; i++) preservation.track(`fail-${i}`, 'staging', { status: 'unhealthy', failingSince: now });
    expect(preservation.judge()).toEqual([expect.objectContaining({ environment: 'staging', cause: 'recovered', failing: 0, judged: 4 })]);
    // A failure that began longer ago than the window is standing: not judged at all.
    now += settings.MASS_FAILURE_WINDOW_MS + 1;
    for (let i = 0; i < 3; i++) preservation.track(`old-${i}`, 'staging', { status: 'healthy', failingSince: now - settings.MASS_FAILURE_WINDOW_MS + 10 });
    expect(preservation.judge()).toEqual([]);
    now += 11;
    for (let i = 0; i < 6; i++) preservation.track(`new-${i}`, 'staging', { status: 'healthy', failingSince: now });
    expect(preservation.judge()).toEqual([expect.objectContaining({ cause: 'wave', failing: 6, judged: 10 })]);
  });
});
