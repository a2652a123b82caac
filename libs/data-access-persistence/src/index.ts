export * from './lib/service-instance.entity';
export * from './lib/service-tombstone.entity';
export * from './lib/outbox.entity';
export * from './lib/data-source.config';
export * from './lib/registry.repository';
