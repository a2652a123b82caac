export * from './lib/nats.client';
export * from './lib/trace-context.util';
export type { Msg, Subscription, PubAck } from 'nats';
