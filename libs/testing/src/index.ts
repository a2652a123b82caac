export * from './lib/services.util';
export * from './lib/test-environment.util';
export * from './lib/private-server.util';
export * from './lib/nats-server.util';
export * from './lib/secured-nats-server.util';
export * from './lib/wait.util';
export * from './lib/tcp-proxy.util';
export * from './lib/redis-server.util';
