import { parseHeartbeat } from './heartbeat.util';
import { HeartbeatDto } from './service-instance.dto';
import { parseWith } from './validation.util';

describe('parseHeartbeat', () => {
  const samples: unknown[] = [
    {},
    { metadata: {} },
    { metadata: { requestsPerMinute: 45, averageLatency: 250.5, errorRate: 0.01, inflight: 3 } },
    { metadata: { errorRate: 1 } },
    { metadata: { errorRate: 1.01 } },
    { metadata: { inflight: 1.5 } },
    { metadata: { requestsPerMinute: -1 } },
    { metadata: { averageLatency: 'fast' } },
    { metadata: { requestsPerMinute: Number.POSITIVE_INFINITY } },
    { metadata: { unknown: 1 } },
    { metadata: null },
    { metadata: [1] },
    { other: true },
    [],
    null,
    'text',
  ];

  it.each(samples.map((s) => [JSON.stringify(s) ?? String(s), s]))('agrees with HeartbeatDto on %s', (_label, sample) => {
    expect(parseHeartbeat(sample).ok).toBe(parseWith(HeartbeatDto, sample).ok);
  });

  it('names the bad field when it rejects', () => {
    expect(parseHeartbeat({ metadata: { errorRate: 2 } })).toEqual({ ok: false, errors: [{ field: 'metadata.errorRate', reason: 'errorRate must not be greater than 1' }] });
  });
});
