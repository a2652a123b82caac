import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import type { CacheInvalidatorConfig } from './config/cache-invalidator.config';

/** Builds the invalidator without listening: main.ts and tests share it. */
export async function createCacheInvalidator(config: CacheInvalidatorConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  await app.init();
  return app;
}
