import { jetStreamPosition } from './stream-feed';

describe('jetStreamPosition', () => {
  it('reads the stream and delivery sequences of the old reply subject ($JS.ACK.<stream>.<consumer>.…)', () => {
    expect(jetStreamPosition('$JS.ACK.REGISTRY.abc.1.42.7.1700000000000000000.0')).toEqual({ stream: 42, delivery: 7 });
  });

  it('reads them from the new form with domain, account hash and a trailing token', () => {
    expect(jetStreamPosition('$JS.ACK._.HASH.REGISTRY.abc.1.42.7.1700000000000000000.3.xyz')).toEqual({ stream: 42, delivery: 7 });
  });

  it('answers undefined for anything that is not a JetStream delivery (a core message, a forged reply)', () => {
    expect(jetStreamPosition(undefined)).toBeUndefined();
    expect(jetStreamPosition('_INBOX.llm-router.abc')).toBeUndefined();
    expect(jetStreamPosition('$JS.ACK.REGISTRY.abc.1.x.y.0.0')).toBeUndefined();
  });
});
