export * from './lib/env.config';
export * from './lib/app-env.config';
export * from './lib/nats-auth.util';
export * from './lib/redact-url.util';
export * from './lib/shutdown.util';
