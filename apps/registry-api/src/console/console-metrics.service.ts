import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';
import { ConsoleFeedService } from './console-feed.service';
import { RouterCounters, routerCounters, RouterModelSummary, SCRAPED_METRICS, selfPreservation, summariseRouters } from './metrics-summary.util';
import { MAX_EXPOSITION_BYTES, parsePrometheusText, Sample } from './prometheus-text.util';

export interface ScrapeTarget {
  url: string;
  up: boolean;
  error?: string;
}

/** What the `metrics` message of the feed carries, every CONSOLE_SCRAPE_INTERVAL_MS while someone watches. */
export interface ConsoleMetrics {
  at: number;
  intervalSeconds: number;
  routers: ScrapeTarget[];
  models: RouterModelSummary[];
  probers: ScrapeTarget[];
  /** Environments a prober holds under self-preservation (true) or judges normally (false). */
  selfPreservation: Record<string, boolean>;
  registry: { outboxDepth: number | null; instances: number; revision: number };
  /** Lines of the scrapes that were not samples (skipped). */
  malformedLines: number;
}

const SCRAPE_TIMEOUT_MS = 1500;

/**
 * Metrics collection for the console's panels, not registry polling: the routers' and probers'
 * `/metrics` (CONSOLE_ROUTER_URLS, CONSOLE_PROBER_URLS) are scraped only while a console is
 * connected, reduced to a small summary (rates and percentiles over the interval) and pushed on the
 * feed. The registry's own figures (outbox depth, table size) come from this process.
 */
@Injectable()
export class ConsoleMetricsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('ConsoleMetrics');
  private timer?: NodeJS.Timeout;
  private running = false;
  private previous = new Map<string, RouterCounters>();
  private lastAt = 0;
  private readonly routerUrls: string[];
  private readonly proberUrls: string[];

  constructor(
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
    @Inject(ConsoleFeedService) private readonly feed: ConsoleFeedService,
    @Inject(RegistryRepository) private readonly repository: RegistryRepository,
  ) {
    this.routerUrls = splitUrls(config.CONSOLE_ROUTER_URLS);
    this.proberUrls = splitUrls(config.CONSOLE_PROBER_URLS);
  }

  onModuleInit(): void {
    this.timer = setInterval(() => void this.tick(), this.config.CONSOLE_SCRAPE_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One round; skipped without viewers, and never two at once. */
  async tick(): Promise<ConsoleMetrics | undefined> {
    if (this.running || !this.feed.clientCount) {
      if (!this.feed.clientCount) this.previous.clear();
      return undefined;
    }
    this.running = true;
    try {
      const summary = await this.collect();
      this.feed.broadcast('metrics', summary);
      return summary;
    } finally {
      this.running = false;
    }
  }

  private async collect(): Promise<ConsoleMetrics> {
    const now = Date.now();
    const seconds = this.lastAt ? (now - this.lastAt) / 1000 : 0;
    this.lastAt = now;
    const [routerScrapes, proberScrapes, outboxDepth] = await Promise.all([
      Promise.all(this.routerUrls.map((url) => scrape(url))),
      Promise.all(this.proberUrls.map((url) => scrape(url))),
      this.repository.outboxDepth().catch(() => null),
    ]);
    const pairs: { before?: RouterCounters; now: RouterCounters }[] = [];
    const next = new Map<string, RouterCounters>();
    for (const s of routerScrapes) {
      if (!s.samples) continue;
      const counters = routerCounters(s.samples);
      next.set(s.target.url, counters);
      pairs.push({ before: this.previous.get(s.target.url), now: counters });
    }
    this.previous = next;
    const malformedLines = [...routerScrapes, ...proberScrapes].reduce((n, s) => n + s.malformed, 0);
    if (malformedLines) this.logger.debug(`${malformedLines} malformed metrics line(s) skipped`);
    const table = this.feed.routingTable;
    return {
      at: now,
      intervalSeconds: Math.round(seconds * 100) / 100,
      routers: routerScrapes.map((s) => s.target),
      models: summariseRouters(pairs, seconds),
      probers: proberScrapes.map((s) => s.target),
      selfPreservation: selfPreservation(proberScrapes.flatMap((s) => (s.samples ? [s.samples] : []))),
      registry: { outboxDepth, instances: table?.size ?? 0, revision: table?.revision ?? 0 },
      malformedLines,
    };
  }
}

export function splitUrls(list: string): string[] {
  return list
    .split(',')
    .map((u) => u.trim().replace(/\/+$/, ''))
    .filter(Boolean);
}

/** GET <url>/metrics within a timeout, read up to MAX_EXPOSITION_BYTES (the rest is not read). */
async function scrape(url: string): Promise<{ target: ScrapeTarget; samples?: Sample[]; malformed: number }> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return { target: { url, up: false, error: `HTTP ${response.status}` }, malformed: 0 };
    }
    const text = await readBounded(response.body, MAX_EXPOSITION_BYTES);
    const parsed = parsePrometheusText(text, SCRAPED_METRICS);
    return { target: { url, up: true }, samples: parsed.samples, malformed: parsed.malformed };
  } catch (error) {
    return { target: { url, up: false, error: (error as Error).message.slice(0, 200) }, malformed: 0 };
  }
}

async function readBounded(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    text += decoder.decode(value, { stream: true });
    if (bytes >= maxBytes) {
      await reader.cancel();
      break;
    }
  }
  return text;
}
