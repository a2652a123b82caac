// NATS handlers as @nestjs/microservices controllers: an entry of its own, since the SDK bundles
// this lib's main entry for plain Node callers, who need neither @nestjs/microservices nor rxjs.
export * from './lib/nats-command.server';
export * from './lib/plain-json.serializer';
