import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import type { LlmRouterConfig } from './config/llm-router.config';

/** Builds the router without listening: main.ts and tests share it. */
export async function createLlmRouter(config: LlmRouterConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    // forceCloseConnections: by the time the server closes, DrainService has ended every proxy request,
    // so what is left are idle keep-alive connections (65 s) that would hold the close open.
    new FastifyAdapter({ bodyLimit: config.BODY_LIMIT_BYTES, keepAliveTimeout: 65_000, forceCloseConnections: true }),
    // rawBody: the JSON parser keeps the bytes it parsed (req.rawBody), forwarded as they came.
    { bufferLogs: true, rawBody: true },
  );
  app.useLogger(app.get(Logger));
  await app.init();
  return app;
}
