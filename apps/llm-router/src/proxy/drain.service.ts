import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { trackShutdownWork } from '@switchboard/config';
import type { LlmRouterConfig } from '../config/llm-router.config';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { OpenAiError } from './openai-error.exception';

/** Time kept back from SHUTDOWN_GRACE_MS after the drain, to end the cut streams and close NATS and the pools. */
export function drainBudgetMs(graceMs: number): number {
  return graceMs - Math.min(2000, Math.max(250, Math.round(graceMs / 5)));
}

/** What the drain can cut: the proxy's per-request client side (or an AbortController). */
export interface Abortable {
  abort(): void;
}

/**
 * Shutdown in two steps, before the HTTP server closes (Nest's beforeApplicationShutdown):
 * 1. **drain**: new proxy requests are refused (503 `router_shutting_down` with `Connection: close`),
 *    /health says not ready, and requests in flight, streams included, go on;
 * 2. **cut**, when the drain budget (SHUTDOWN_GRACE_MS less a margin) runs out: every request still in
 *    flight is aborted (`abort()`); the proxy ends a started stream with an SSE error event
 *    and aborts its upstream request, and answers one not yet started with the 503.
 */
@Injectable()
export class DrainService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DrainService.name);
  private readonly inFlight = new Set<Abortable>();
  private idle?: () => void;
  private drainingSince?: number;

  constructor(@Inject(LLM_ROUTER_CONFIG) private readonly config: LlmRouterConfig) {}

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * A request starts: `request.abort()` is called when the drain budget runs out (without one, an
   * AbortController is made, whose signal aborts then). Refused while draining.
   */
  enter(): AbortController;
  enter<T extends Abortable>(request: T): T;
  enter(request: Abortable = new AbortController()): Abortable {
    if (this.draining) throw OpenAiError.shuttingDown();
    this.inFlight.add(request);
    return request;
  }

  leave(request: Abortable): void {
    this.inFlight.delete(request);
    if (!this.inFlight.size) this.idle?.();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.drainingSince = Date.now();
    const budget = drainBudgetMs(this.config.shutdownGraceMs);
    if (!this.inFlight.size) return;
    this.logger.log(`draining ${this.inFlight.size} request(s) in flight for up to ${budget} ms`);
    const pending = () => `${this.inFlight.size} router request(s) in flight`;
    if (await trackShutdownWork(pending, this.whenIdle(budget))) return;
    this.logger.warn(`drain time is up: cutting ${this.inFlight.size} request(s) still in flight`);
    for (const request of this.inFlight) request.abort();
    // Ending a cut stream takes a write and a close; what is left of the grace bounds it.
    await trackShutdownWork(pending, this.whenIdle(Math.max(0, this.config.shutdownGraceMs - (Date.now() - this.drainingSince))));
  }

  /** True once nothing is in flight, false if `timeoutMs` passed first. */
  private whenIdle(timeoutMs: number): Promise<boolean> {
    if (!this.inFlight.size) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idle = undefined;
        resolve(false);
      }, timeoutMs);
      this.idle = () => {
        clearTimeout(timer);
        this.idle = undefined;
        resolve(true);
      };
    });
  }
}
