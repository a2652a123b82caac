export * from './lib/status';
export * from './lib/subjects';
export * from './lib/validators.util';
export * from './lib/validation.util';
export * from './lib/service-instance.dto';
export * from './lib/model-deployment.dto';
export * from './lib/registry.event';
export * from './lib/heartbeat.util';
