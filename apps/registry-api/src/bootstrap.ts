import { INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { flattenValidationErrors, VALIDATION_OPTIONS } from '@switchboard/contracts';
import { AppModule } from './app.module';
import type { RegistryApiConfig } from './config/registry-api.config';
import { RegistryException } from './registry/registry.exception';

/** Builds the app (HTTP, validation, OpenAPI) without listening: main.ts and tests share it. */
export async function createRegistryApi(config: RegistryApiConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    new FastifyAdapter({ bodyLimit: config.BODY_LIMIT_BYTES, trustProxy: true }),
    { bufferLogs: true },
  );
  app.useLogger(app.get(Logger));
  app.useGlobalPipes(
    new ValidationPipe({
      ...VALIDATION_OPTIONS,
      transform: true,
      exceptionFactory: (errors) => RegistryException.validation(flattenValidationErrors(errors)),
    }),
  );
  app.enableShutdownHooks();
  setupOpenApi(app);
  await app.init();
  return app;
}

function setupOpenApi(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Switchboard registry-api')
      .setDescription('The service registry of record: register, heartbeat, status, discover, deregister; the model view; snapshot.')
      .setVersion('2')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Registry-Token' }, 'registry-token')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Admin-Token' }, 'admin-token')
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });
}
