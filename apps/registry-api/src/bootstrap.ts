import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { CustomStrategy } from '@nestjs/microservices';
import type { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { NatsCommandServer } from '@switchboard/messaging/nest';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { registerConsoleStatic } from './console/console-static.util';
import type { RegistryApiConfig } from './config/registry-api.config';
import { RegistryMetricsService } from './observability/registry-metrics.service';
import { SUBJECTS } from './registry-api.tokens';
import { RegistryErrorCode } from './registry/registry.exception';
import { RegistryValidationPipe } from './registry/validation-pipe.util';

/** Builds the app (HTTP, validation, OpenAPI, NATS commands answered) without listening on HTTP: main.ts and tests share it. */
export async function createRegistryApi(config: RegistryApiConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    new FastifyAdapter({
      bodyLimit: config.BODY_LIMIT_BYTES,
      trustProxy: true,
      // A URL that is not valid percent-encoded UTF-8 never reaches Nest: answer it in the API's error shape.
      frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
        void reply.status(400).send({
          success: false,
          statusCode: 400,
          error: RegistryErrorCode.ValidationFailed,
          message: 'Validation failed: the URL is not valid percent-encoded UTF-8',
          errors: [{ field: '(url)', reason: `the URL is not valid percent-encoded UTF-8 (${error.code})` }],
        });
      },
    }),
    { bufferLogs: true },
  );
  app.useLogger(app.get(Logger));
  app.useGlobalPipes(new RegistryValidationPipe());
  setupOpenApi(app);
  await registerConsoleStatic(app, config.CONSOLE_DIR);
  await app.init();
  // Hybrid: the NATS commands (`registry.cmd.*`) are @MessagePattern handlers on the app's own connection.
  app.connectMicroservice<CustomStrategy>({
    strategy: new NatsCommandServer({
      nats: app.get(NatsClient),
      subjects: app.get<SubjectSpace>(SUBJECTS),
      queueGroupOf: 'registry-api',
      rejections: app.get(RegistryMetricsService).messagesRejected,
    }),
  });
  await app.startAllMicroservices();
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
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Registry-Token', description: 'REGISTRY_READ_TOKEN (or the write or admin token), when reads are protected' }, 'read-token')
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });
}
