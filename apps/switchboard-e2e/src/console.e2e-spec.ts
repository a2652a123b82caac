/// <reference lib="dom" />
// page.evaluate callbacks run in the browser.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, freePort, TestEnvironment, waitFor } from '@switchboard/testing';
import { API_KEY, registerInstance, REGISTRY_TOKEN, RunningApp, startApp, startRouter, stopApp } from './support/system.util';

const REGISTRY = '/api/v2/services/registry';
const ADMIN_TOKEN = 'dev-admin-token';
const MODEL = 'console-llama';
const SHOTS = join(process.cwd(), 'tmp/console-screenshots');

/**
 * The console in a real browser (Debian's Chromium driven by playwright-core) against the built
 * registry-api (which serves the page and its feed) and llm-router: what an operator sees and does.
 */
describe('console (Chromium against the built registry-api and llm-router)', () => {
  let env: TestEnvironment;
  let registry: RunningApp;
  let router: RunningApp;
  let backend: MockBackend;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  const rest = async (method: string, path: string, body?: unknown, headers: Record<string, string> = { 'x-registry-token': REGISTRY_TOKEN }) => {
    const response = await fetch(`${registry.url}${REGISTRY}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as any };
  };
  const row = (id: string) => page.locator(`[data-testid="instance-row"][data-instance-id="${id}"]`);
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  const routerAnswer = async () => {
    const response = await fetch(`${router.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    env = await createTestEnvironment('console');
    const routerPort = await freePort();
    registry = await startApp('dist/apps/registry-api/apps/registry-api/src/main.js', {
      NATS_URL: env.natsUrl,
      SUBJECT_PREFIX: env.subjectPrefix,
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
      CONSOLE_ROUTER_URLS: `http://127.0.0.1:${routerPort}`,
      CONSOLE_PROBER_URLS: 'http://127.0.0.1:9',
      CONSOLE_SCRAPE_INTERVAL_MS: '1000',
    });
    router = await startRouter(env.natsUrl, env.subjectPrefix, { PORT: String(routerPort), DRIFT_CHECK_INTERVAL_MS: '1000' });
    backend = await startMockBackend({ name: 'console-backend', models: [MODEL] });
    await registerInstance(registry.url, { serviceId: 'console-backend-1', serviceName: 'vllm', port: backend.port, models: [MODEL], version: '0.6.3', region: 'fra1' });
    for (let i = 1; i <= 3; i++) await registerInstance(registry.url, { serviceId: `console-api-${i}`, serviceName: 'mech-llms', port: 3000 + i, region: i === 3 ? 'nyc1' : 'fra1' });
    await waitFor(async () => (await routerAnswer()).status === 200, 10_000, 'the router to route the model');
    // Load figures as services report them (REST heartbeats; NATS ones read alike).
    for (const [id, rpm, latency] of [['console-backend-1', 840, 212], ['console-api-1', 120, 35], ['console-api-2', 95, 41], ['console-api-3', 60, 38]] as const) {
      await rest('POST', `/${id}/heartbeat`, { metadata: { requestsPerMinute: rpm, averageLatency: latency, errorRate: 0.004, inflight: Math.round(rpm / 100) } });
    }
    browser = await chromium.launch({
      executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await backend?.close();
    await stopApp(router);
    await stopApp(registry);
    await env?.dispose();
  });
  beforeEach(async () => {
    // A fresh context per test: its own sessionStorage, so no token carries over.
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    page = await context.newPage();
    await page.goto(`${registry.url}/console`);
    await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor({ timeout: 10_000 });
  });
  afterEach(async () => {
    await context?.close();
  });

  it('loads the live fleet from the feed, grouped by environment and service, in light and dark', async () => {
    await row('console-backend-1').waitFor();
    expect(await page.locator('[data-testid="feed-status"]').textContent()).toMatch(/Live · 4 instances · revision \d+/);
    expect(await row('console-backend-1').getAttribute('data-status')).toBe('healthy');
    expect(await row('console-backend-1').textContent()).toContain('v0.6.3');
    expect(await page.getByRole('heading', { name: /development/ }).count()).toBeGreaterThan(0);
    // The router panel fills from the scraped /metrics once it has two scrapes.
    const modelRow = page.locator('.router-table tbody tr', { has: page.getByRole('rowheader', { name: MODEL }) });
    await modelRow.waitFor({ timeout: 10_000 });
    // Traffic through the router shows in its panel as requests/s over the last scrape interval.
    await waitFor(async () => {
      await Promise.all(Array.from({ length: 5 }, () => routerAnswer()));
      return !/^0 /.test((await modelRow.locator('td').first().textContent()) ?? '0 ');
    }, 15_000, 'router traffic in the panel');
    expect(await row('console-backend-1').textContent()).toContain('840 rpm');
    await shot('01-fleet-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe('rgb(17, 20, 24)');
    await shot('02-fleet-dark');
  });

  it('shows an instance registered through REST as pushed by the feed, without a reload or a request', async () => {
    await row('console-backend-1').waitFor();
    let reloaded = false;
    const requests: string[] = [];
    const onRequest = (request: { url(): string }) => requests.push(request.url());
    page.on('load', () => (reloaded = true));
    page.on('request', onRequest);
    await registerInstance(registry.url, { serviceId: 'console-late-1', serviceName: 'late-svc', port: 4001, region: 'sfo3' });
    // Pushed from the registry event over the open feed: the page asks nothing (no polling, no reload).
    // How fast is bench:console's figure (REST change → row on screen); this deadline only bounds a hang.
    await row('console-late-1').waitFor({ timeout: 5000 });
    page.off('request', onRequest);
    expect(reloaded).toBe(false);
    expect(requests).toEqual([]);
    await shot('03-registered');
  });

  it('recolours an instance when its status changes', async () => {
    const badge = row('console-api-2').locator('[data-testid="health"]');
    await badge.waitFor();
    const before = await badge.evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(await badge.textContent()).toBe('healthy');
    expect((await rest('PUT', '/console-api-2/status', { status: 'unhealthy', reason: 'console e2e' })).status).toBe(200);
    await page.locator('[data-instance-id="console-api-2"][data-status="unhealthy"]').waitFor({ timeout: 5000 });
    expect(await badge.textContent()).toBe('unhealthy');
    expect(await badge.evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe(before);
    await shot('04-status-changed');
  });

  it('disables an instance with the admin token; the router then answers 503 model not ready', async () => {
    await page.getByRole('button', { name: 'disable console-backend-1' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.getByTestId('confirm-what').textContent()).toContain('Disable instance console-backend-1 (service vllm, environment development)');
    await dialog.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await page.locator('[data-instance-id="console-backend-1"][data-admin="disabled"]').waitFor({ timeout: 5000 });
    expect(await page.evaluate(() => sessionStorage.getItem('switchboard.console.adminToken'))).toBe(ADMIN_TOKEN);
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    const refused = await waitFor(async () => {
      const answer = await routerAnswer();
      return answer.status === 503 ? answer : undefined;
    }, 10_000, 'the router to refuse the disabled model');
    expect(refused.body.error.message).toBe(`model not ready: ${MODEL} (status: disabled)`);
    await shot('05-disabled');
    // Put it back for the other tests, through the console too (the token is kept for the tab).
    await page.getByRole('button', { name: 'enable console-backend-1' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.locator('[data-instance-id="console-backend-1"][data-admin="enabled"]').waitFor({ timeout: 5000 });
  });

  it('refuses an action without a valid token and shows the API message', async () => {
    const expected = await rest('PUT', '/console-api-1/status', { adminState: 'disabled' }, { 'x-registry-token': 'wrong-token-123' });
    expect(expected.status).toBe(403);
    await page.getByRole('button', { name: 'disable console-api-1' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Admin token').fill('wrong-token-123');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    const error = dialog.getByTestId('action-error');
    await error.waitFor();
    expect(await error.textContent()).toBe(`Refused (403): ${expected.body.message}`);
    await shot('06-refused');
    // Nothing changed.
    expect((await rest('GET', '/services/console-api-1')).body.service.adminState).toBe('enabled');
    expect(await row('console-api-1').getAttribute('data-admin')).toBe('enabled');
  });

  it('lists models → deployments with the model registry status words, and shows a refused health-check round with the API message', async () => {
    await page.getByRole('tab', { name: 'Models' }).click();
    const group = page.locator('.group-model', { hasText: MODEL });
    await group.waitFor();
    expect(await group.textContent()).toContain('in development · 1 of 1 ready');
    expect(await page.locator('[data-testid="instance-row"][data-instance-id="console-backend-1"] [data-testid="status-word"]').textContent()).toBe('ready');
    await shot('09-models');
    // No health-prober runs in this system: registry-api answers 503 PROBER_UNAVAILABLE, shown as it says it.
    const expected = await rest('POST', '/health-checks', {}, { 'x-admin-token': ADMIN_TOKEN });
    expect(expected.status).toBe(503);
    await page.getByRole('button', { name: 'Run health checks' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    const error = dialog.getByTestId('action-error');
    await error.waitFor();
    expect(await error.textContent()).toBe(`Refused (503): ${expected.body.message}`);
  });

  it('drains an instance with the keyboard only: Tab to the action, Enter, type the token, Enter; Escape cancels; focus returns', async () => {
    await row('console-api-3').waitFor();
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent ?? '');
    let presses = 0;
    while ((await focused()) !== 'drain console-api-3') {
      expect(++presses).toBeLessThan(200);
      await page.keyboard.press('Tab');
    }
    // Escape closes the dialog without doing anything, and focus goes back to the button.
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await waitFor(async () => (await focused()) === 'drain console-api-3', 2000, 'focus back on the drain button');
    expect(await row('console-api-3').getAttribute('data-admin')).toBe('enabled');

    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('admin-token');
    await page.keyboard.type(ADMIN_TOKEN);
    await shot('07-keyboard-dialog');
    await page.keyboard.press('Enter');
    await page.locator('[data-instance-id="console-api-3"][data-admin="draining"]').waitFor({ timeout: 5000 });
    await waitFor(async () => (await focused()) === 'drain console-api-3', 2000, 'focus back on the drain button');
    expect(await page.getByRole('button', { name: 'drain console-api-3' }).getAttribute('aria-disabled')).toBe('true');
    expect((await rest('GET', '/services/console-api-3')).body.service.adminState).toBe('draining');
    await shot('08-keyboard-drained');
  });
});

describe('console with REGISTRY_READ_TOKEN set (Chromium against the built registry-api)', () => {
  const READ_TOKEN = 'console-read-token-e2e';
  let env: TestEnvironment;
  let registry: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    env = await createTestEnvironment('console-read');
    registry = await startApp('dist/apps/registry-api/apps/registry-api/src/main.js', {
      NATS_URL: env.natsUrl,
      SUBJECT_PREFIX: env.subjectPrefix,
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      REGISTRY_READ_TOKEN: READ_TOKEN,
      CONSOLE_ROUTER_URLS: 'http://127.0.0.1:9',
      CONSOLE_PROBER_URLS: 'http://127.0.0.1:9',
    });
    await registerInstance(registry.url, { serviceId: 'read-guarded-1', serviceName: 'guarded', port: 5001 });
    browser = await chromium.launch({
      executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await stopApp(registry);
    await env?.dispose();
  });

  it('asks for the read token with the API message, then goes live; the token is sent as a header, never in a URL', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const urls: string[] = [];
    const tokenHeaders: string[] = [];
    page.on('request', (request) => {
      urls.push(request.url());
      const header = request.headers()['x-registry-token'];
      if (header) tokenHeaders.push(header);
    });
    try {
      await page.goto(`${registry.url}/console`);
      await page.locator('[data-testid="feed-status"][data-state="unauthorized"]').waitFor({ timeout: 10_000 });
      const dialog = page.getByRole('dialog');
      expect(await dialog.getByRole('alert').textContent()).toBe('Missing X-Registry-Token header');
      await dialog.getByLabel(/Read token/).fill(READ_TOKEN);
      await page.screenshot({ path: join(SHOTS, '10-read-token.png') });
      await page.keyboard.press('Enter');
      await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor({ timeout: 10_000 });
      await page.locator('[data-testid="instance-row"][data-instance-id="read-guarded-1"]').waitFor();
      expect(tokenHeaders).toContain(READ_TOKEN);
      expect(urls.filter((u) => u.includes(READ_TOKEN))).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
