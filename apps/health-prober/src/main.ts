import './tracing';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { CustomStrategy } from '@nestjs/microservices';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { NatsCommandServer } from '@switchboard/messaging/nest';
import { Logger as PinoLogger } from 'nestjs-pino';
import { exitOnShutdownSignals, exitOnStartFailure, loadConfigOrExit, redactedConfig } from '@switchboard/config';
import { AppModule } from './app.module';
import { HealthProberConfig } from './config/health-prober.config';
import { ProberMetricsService } from './observability/prober-metrics.service';

async function main(): Promise<void> {
  const config = loadConfigOrExit('health-prober', HealthProberConfig);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(PinoLogger));
  // Modules started (the prober's schedule, the routing table) before a command can arrive.
  await app.init();
  // Hybrid: `prober.cmd.runChecks` is a @MessagePattern handler on the app's own NATS connection.
  app.connectMicroservice<CustomStrategy>({
    strategy: new NatsCommandServer({
      nats: app.get(NatsClient),
      subjects: app.get(SubjectSpace),
      queueGroupOf: 'health-prober',
      rejections: app.get(ProberMetricsService).messagesRejected,
    }),
  });
  await app.startAllMicroservices();
  exitOnShutdownSignals(app, { app: 'health-prober', graceMs: config.shutdownGraceMs });
  await app.listen(config.PORT, config.HOST);
  new Logger('health-prober').log(`listening on http://${config.HOST}:${config.PORT} with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch(exitOnStartFailure('health-prober'));
