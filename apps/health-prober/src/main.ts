import './tracing';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger as PinoLogger } from 'nestjs-pino';
import { exitOnShutdownSignals, exitOnStartFailure, loadConfigOrExit, redactedConfig } from '@switchboard/config';
import { AppModule } from './app.module';
import { HealthProberConfig } from './config/health-prober.config';

async function main(): Promise<void> {
  const config = loadConfigOrExit('health-prober', HealthProberConfig);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(PinoLogger));
  exitOnShutdownSignals(app, { app: 'health-prober', graceMs: config.shutdownGraceMs });
  await app.listen(config.PORT, config.HOST);
  new Logger('health-prober').log(`listening on http://${config.HOST}:${config.PORT} with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch(exitOnStartFailure('health-prober'));
