export * from './lib/redis-connection.util';
export * from './lib/discovery-cache.repository';
export * from './lib/cache-invalidation.handler';
