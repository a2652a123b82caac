import './tracing';
import 'reflect-metadata';
import cluster from 'node:cluster';
import { Logger } from '@nestjs/common';
import { exitOnShutdownSignals, exitOnStartFailure, loadConfigOrExit, redactedConfig } from '@switchboard/config';
import { createLlmRouter } from './bootstrap';
import { runPrimary } from './cluster/router-cluster.util';
import { LlmRouterConfig, productionRules } from './config/llm-router.config';

async function main(): Promise<void> {
  const config = loadConfigOrExit('llm-router', LlmRouterConfig, productionRules);
  const clustered = config.workers > 1;
  if (clustered && cluster.isPrimary) {
    if (config.isOpen) warnOpen();
    runPrimary({ workers: config.workers, graceMs: config.shutdownGraceMs });
    return;
  }
  if (config.isOpen && !clustered) warnOpen();
  const app = await createLlmRouter(config);
  // A worker stops on the primary's SIGTERM only: a terminal's SIGINT reaches the whole group, and a
  // second signal would cut the drain short.
  if (clustered) process.on('SIGINT', () => undefined);
  exitOnShutdownSignals(app, { app: 'llm-router', graceMs: config.shutdownGraceMs, ...(clustered ? { signals: ['SIGTERM'] as NodeJS.Signals[] } : {}) });
  await app.listen(config.PORT, config.HOST);
  const worker = clustered ? ` (worker ${cluster.worker?.id} of ${config.workers}, pid ${process.pid})` : '';
  new Logger('llm-router').log(`listening on http://${config.HOST}:${config.PORT}${worker} for ${config.ROUTER_ENVIRONMENT} with ${JSON.stringify(redactedConfig(config))}`);
}

function warnOpen(): void {
  new Logger('llm-router').warn('ROUTER_API_KEYS is not set: /v1 is served without authentication (development only; NODE_ENV=production refuses to start without keys)');
}

main().catch(exitOnStartFailure('llm-router'));
