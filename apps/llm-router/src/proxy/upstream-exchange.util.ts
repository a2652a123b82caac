import type { IncomingHttpHeaders, OutgoingHttpHeader, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { RoutedInstance } from '@switchboard/routing-table';
import type { BalancerService } from '../balancing/balancer.service';
import type { ResolvedPolicy } from '../config/routing-policy.config';
import type { RouterMetricsService } from '../observability/router-metrics.service';
import { requestSpanOf } from '../observability/request-span.util';
import { OpenAiError } from './openai-error.exception';
import { AttemptFailure, classify, retryAfterMs, safeErrorCode } from './upstream.util';

/** Of an error body only the start goes into a message; a backend may send megabytes, which are not read. */
export const ERROR_BODY_MAX_BYTES = 4096;
/** Response headers worth passing back. content-length too: the body passes unchanged, and a known length spares a chunked encoding. */
const RETURNED = ['content-type', 'content-length', 'x-request-id', 'openai-processing-ms', 'retry-after'];
/** Ends a stream the shutdown cut: an error event in OpenAI's shape (the `openai` client throws it as an APIError), no [DONE]. */
const SHUTDOWN_SSE_EVENT = `data: ${JSON.stringify(OpenAiError.shuttingDown().body)}\n\n`;

export type AttemptResult = { done: true } | { done: false; failure: AttemptFailure };

class TimeoutSignal extends Error {
  override name = 'TimeoutError';
}
/** Aborts an error body once its start is read: the rest is not wanted, and the connection is not reused. */
class ErrorBodyCut extends Error {}

const CLIENT = Symbol('llm-router client side');
type TaggedResponse = ServerResponse & { [CLIENT]?: ClientSide };

/**
 * The client's side of one proxied request, across its attempts: the response, whether the client went
 * away, and the drain's cut (DrainService calls `abort()`). Its listeners on the response are shared
 * functions that find it through a symbol, so a request costs no closures for them.
 */
export class ClientSide {
  gone = false;
  cut = false;
  exchange?: UpstreamExchange;

  constructor(readonly res: ServerResponse) {
    (res as TaggedResponse)[CLIENT] = this;
    res.on('close', onClientClose);
  }

  /** The drain's cut: a started answer ends (an SSE error event), one not started gets the 503. */
  abort(): void {
    this.cut = true;
    this.exchange?.cutByShutdown();
  }

  release(): void {
    this.res.off('close', onClientClose);
    (this.res as TaggedResponse)[CLIENT] = undefined;
  }
}

function onClientClose(this: TaggedResponse): void {
  const client = this[CLIENT];
  if (!client || this.writableFinished) return;
  client.gone = true;
  client.exchange?.abort(new Error('client closed the connection'));
}

function resumeOnDrain(this: TaggedResponse): void {
  this[CLIENT]?.exchange?.resume();
}

function onTotalTimeout(exchange: UpstreamExchange): void {
  exchange.timeout('total timeout');
}

function onFirstTokenTimeout(exchange: UpstreamExchange): void {
  exchange.timeout('no first byte in time');
}

export interface ExchangeDeps {
  balancer: BalancerService;
  metrics: RouterMetricsService;
}

/**
 * One attempt on one instance, as an undici dispatch handler: the answer's chunks go straight from the
 * upstream parser to the client's response (no body stream, iterator or promise per chunk). The answer
 * is held until its first chunk exists (or it ended empty), so until then another instance can still
 * take over: a connect error, a timeout, a 5xx or a 429 settles the attempt as failed, with nothing
 * written. From the first chunk on, it streams: `res.write` returning false pauses the upstream until
 * the client drains; a cut upstream is passed on as a cut; the client's going away or the drain's cut
 * aborts the upstream request. Settles once, after the last byte or the failure.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  private controller?: Dispatcher.DispatchController;
  private abortReason?: Error;
  private readonly started = performance.now();
  private readonly totalTimer: NodeJS.Timeout;
  private firstTokenTimer?: NodeJS.Timeout;
  private timedOut = false;
  private settled = false;
  private committed = false;
  private eventStream = false;
  private statusCode = 0;
  private headers?: IncomingHttpHeaders;
  private errorBody?: Buffer[];
  private errorBytes = 0;

  constructor(
    private readonly deps: ExchangeDeps,
    private readonly client: ClientSide,
    private readonly model: string,
    private readonly instance: RoutedInstance,
    private readonly policy: ResolvedPolicy,
    private readonly stream: boolean,
    private readonly resolve: (result: AttemptResult) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.totalTimer = setTimeout(onTotalTimeout, policy.totalMs, this);
    deps.balancer.started(instance.serviceId);
    client.exchange = this;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortReason) controller.abort(this.abortReason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // informational (1xx): the real answer follows
    this.statusCode = statusCode;
    if (statusCode >= 500 || statusCode === 429) {
      this.headers = headers;
      this.errorBody = [];
      return;
    }
    this.headers = headers;
    // A stream's first token must arrive within what is left of firstTokenMs; a plain answer's body
    // follows its headers at once (bodyTimeout still guards it), so it needs no timer of its own.
    if (this.stream) {
      this.firstTokenTimer = setTimeout(onFirstTokenTimeout, Math.max(1, this.policy.firstTokenMs - (performance.now() - this.started)), this);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.errorBody) {
      this.errorBody.push(chunk);
      this.errorBytes += chunk.length;
      if (this.errorBytes >= ERROR_BODY_MAX_BYTES) {
        this.deps.metrics.errorBodiesTruncated.inc({ model: this.model });
        this.failWithStatus();
        controller.abort(new ErrorBodyCut());
      }
      return;
    }
    const first = !this.committed;
    if (first) this.commit();
    const res = this.client.res;
    requestSpanOf(this.client)?.chunk(chunk);
    // Backpressure: the parser may hand over what it already holds after a pause; one drain listener is enough.
    if (!res.write(chunk) && !controller.paused) {
      controller.pause();
      res.once('drain', resumeOnDrain);
    }
    // Node corks the socket on a write and sends at the next tick, after the rest of this upstream read
    // is parsed and written (a burst may hold the whole stream): a stream's head and first token leave now.
    if (first && this.eventStream && res.socket?.writableCorked) res.socket.uncork();
  }

  onResponseEnd(): void {
    if (this.settled) return;
    if (this.errorBody) return this.failWithStatus();
    if (!this.committed) this.commit();
    this.client.res.end();
    requestSpanOf(this.client)?.end(this.statusCode);
    const series = this.deps.metrics.seriesOf(this.model, this.instance.serviceId);
    series.answered(this.statusCode);
    series.duration.observe((performance.now() - this.started) / 1000);
    this.settle({ done: true });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return;
    const { client } = this;
    if (client.gone) {
      this.deps.metrics.clientAborts.inc({ model: this.model });
      return this.settle({ done: true });
    }
    if (client.cut) {
      if (!this.committed) return this.settle(undefined, OpenAiError.shuttingDown());
      endCutByShutdown(client.res, this.eventStream);
      return this.settle({ done: true });
    }
    if (this.committed) {
      // Cut after the first byte: too late to retry; end the client's stream so it sees the cut.
      this.deps.metrics.streamCuts.inc({ model: this.model, instance: this.instance.serviceId });
      this.deps.balancer.failed(this.model, this.instance.serviceId, this.policy);
      client.res.destroy();
      return this.settle({ done: true });
    }
    // A failure while an error body was read: the status says enough.
    if (this.errorBody) return this.failWithStatus();
    const kind = this.timedOut ? 'timeout' : classify(error);
    const detail = `${error.message}${error.cause ? ` (${String(error.cause)})` : ''}`;
    this.settle({ done: false, failure: { kind, instance: this.instance.serviceId, code: kind === 'timeout' ? 'timeout' : safeErrorCode(error), detail } });
  }

  abort(reason: Error): void {
    if (this.settled) return;
    this.abortReason ??= reason;
    this.controller?.abort(reason);
  }

  resume(): void {
    this.controller?.resume();
  }

  timeout(what: string): void {
    this.timedOut = true;
    this.abort(new TimeoutSignal(what));
  }

  cutByShutdown(): void {
    this.abort(new Error('router shutting down'));
  }

  /** The first byte exists: from here on the answer is the client's, and no other instance can take over. */
  private commit(): void {
    const ttftMs = performance.now() - this.started;
    clearTimeout(this.firstTokenTimer);
    this.committed = true;
    this.deps.balancer.succeeded(this.instance.serviceId, ttftMs);
    const head = responseHeaders(this.headers ?? {}, this.instance.serviceId);
    this.eventStream = head.eventStream;
    // Written with the first chunk: Node sends the head and that chunk in one write.
    this.client.res.writeHead(this.statusCode, head.headers);
    this.deps.metrics.seriesOf(this.model, this.instance.serviceId).ttft.observe(ttftMs / 1000);
    requestSpanOf(this.client)?.firstByte(ttftMs);
  }

  private failWithStatus(): void {
    const text = Buffer.concat(this.errorBody ?? []).subarray(0, ERROR_BODY_MAX_BYTES).toString('utf8');
    const status = this.statusCode;
    this.settle({
      done: false,
      failure: {
        kind: 'status',
        instance: this.instance.serviceId,
        status,
        retryAfterMs: retryAfterMs(this.headers?.['retry-after']),
        code: `HTTP ${status}`,
        detail: `HTTP ${status}: ${text.slice(0, 500)}`,
      },
    });
  }

  private settle(result: AttemptResult | undefined, error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.totalTimer);
    clearTimeout(this.firstTokenTimer);
    this.client.res.off('drain', resumeOnDrain);
    if (this.client.exchange === this) this.client.exchange = undefined;
    this.deps.balancer.finished(this.instance.serviceId);
    if (result) this.resolve(result);
    else this.reject(error);
  }
}

/** The headers passed back (a flat array: Node takes it as is), and whether the answer is an event stream. */
function responseHeaders(upstream: IncomingHttpHeaders, serviceId: string): { headers: OutgoingHttpHeader[]; eventStream: boolean } {
  const headers: OutgoingHttpHeader[] = ['x-switchboard-instance', serviceId];
  let eventStream = false;
  for (const name of RETURNED) {
    const raw = upstream[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (!value) continue;
    headers.push(name, value);
    if (name === 'content-type' && value.startsWith('text/event-stream')) eventStream = true;
  }
  if (eventStream) headers.push('cache-control', 'no-cache', 'x-accel-buffering', 'no');
  return { headers, eventStream };
}

/** A started event stream gets the error event, then its end; any other answer can only be cut off. */
function endCutByShutdown(res: ServerResponse, eventStream: boolean): void {
  if (res.destroyed) return;
  if (eventStream) {
    res.end(SHUTDOWN_SSE_EVENT);
  } else {
    res.destroy();
  }
}
