export * from './lib/env.config';
export * from './lib/app-env.config';
