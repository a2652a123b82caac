import { LoadMeter, register, ServiceRegistration } from '@switchboard/client';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { loadMockBackendConfig, MockBackendAppConfig, MockBackendConfigError } from './mock-backend.config';

const HEALTH_PATH = '/health';

async function main(): Promise<void> {
  let config: MockBackendAppConfig;
  try {
    config = loadMockBackendConfig(process.env);
  } catch (error) {
    if (error instanceof MockBackendConfigError) {
      process.stderr.write(`mock-llm-backend: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  // Created before the port is known (PORT=0), so the registration measures from the first request.
  const meter = config.registration ? new LoadMeter({ ignorePaths: [HEALTH_PATH] }) : undefined;
  const backend = await startMockBackend({ ...config, onRequest: meter && ((req, res) => meter.track(req, res)) });
  process.stdout.write(
    `mock-llm-backend ${backend.name} listening on http://${config.host}:${backend.port} ` +
      `models=${backend.models.join(',')} latencyMs=${config.latencyMs} tokensPerSecond=${config.tokensPerSecond} completionTokens=${config.completionTokens}\n`,
  );
  if (config.registration && meter) {
    const { serviceName, serviceId, heartbeatIntervalMs, drainDeadlineMs } = config.registration;
    let service: ServiceRegistration;
    try {
      service = await register({
        serviceName,
        serviceId,
        internalPort: backend.port,
        models: [...backend.models],
        capabilities: ['llm', 'openai', 'streaming', 'mock'],
        healthCheckEndpoint: HEALTH_PATH,
        heartbeatIntervalMs,
        loadMeter: meter,
        connectionName: 'mock-llm-backend',
      });
    } catch (error) {
      process.stderr.write(`mock-llm-backend: registration failed: ${(error as Error).message}\n`);
      await backend.close();
      process.exit(78);
    }
    process.stdout.write(`mock-llm-backend ${backend.name} registered as ${service.serviceId} (${service.environment})\n`);
    // SIGTERM/SIGINT: draining → in-flight requests end → deregistered; then the server closes.
    service.handleSignals({
      deadlineMs: drainDeadlineMs,
      exit: (code, result) => void closeAndExit(backend, code, result?.deregistered ? 'drained and deregistered' : 'drained; not deregistered (registry-api unreachable)'),
    });
    return;
  }
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal while closing means "now".
    process.once(signal, () => process.exit(1));
    void closeAndExit(backend, 0, `stopped on ${signal}`);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function closeAndExit(backend: MockBackend, code: number, what: string): Promise<void> {
  if (code !== 0) process.exit(code);
  try {
    await backend.close();
    process.stdout.write(`mock-llm-backend ${backend.name} ${what}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`mock-llm-backend: close failed: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

main().catch((error: Error) => {
  process.stderr.write(`mock-llm-backend failed to start: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
