describe('startTracing', () => {
  const loaded: string[] = [];

  beforeEach(() => {
    jest.resetModules();
    loaded.length = 0;
    // Stands in for the SDK module: records that it was loaded and started, so nothing is exported.
    jest.doMock('./lib/tracing/otel-sdk.util', () => {
      loaded.push('otel-sdk');
      return { startOtelSdk: (name: string) => loaded.push(`started ${name}`) };
    });
  });

  const load = () => require('./tracing') as typeof import('./tracing');

  it('loads nothing of the SDK without an OTLP endpoint, or when OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none say so', () => {
    const { startTracing } = load();
    expect(startTracing('registry-api', {})).toBe(false);
    expect(startTracing('registry-api', { OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
    expect(startTracing('registry-api', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
    expect(startTracing('registry-api', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(loaded).toEqual([]);
  });

  it('loads and starts it once an endpoint (general or traces) or an exporter is set, and only once', () => {
    const { startTracing } = load();
    expect(startTracing('llm-router', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' })).toBe(true);
    expect(startTracing('llm-router', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
    expect(loaded).toEqual(['otel-sdk', 'started llm-router']);
  });

  it('counts an explicit OTEL_TRACES_EXPORTER (console) as asking for traces', () => {
    const { tracingWanted } = load();
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'console,none' })).toBe(false);
  });
});
