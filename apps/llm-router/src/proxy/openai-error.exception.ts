import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';

/** An error as OpenAI's API returns it: `{ error: { message, type, param, code } }`. */
export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  static badRequest(message: string, param: string | null = null): OpenAiError {
    return new OpenAiError(400, message, 'invalid_request_error', param ? 'invalid_value' : 'invalid_request', param);
  }

  static modelNotFound(model: string): OpenAiError {
    return new OpenAiError(404, `model not found in registry: ${model}`, 'invalid_request_error', 'model_not_found', 'model');
  }

  static modelNotReady(model: string, status: string): OpenAiError {
    return new OpenAiError(503, `model not ready: ${model} (status: ${status})`, 'service_unavailable', 'model_not_ready', 'model');
  }

  /** This replica is stopping: nothing was done, try again (another replica). `Connection: close` makes a pool drop this connection. */
  static shuttingDown(): OpenAiError {
    return new OpenAiError(503, 'router shutting down', 'service_unavailable', 'router_shutting_down', null, { connection: 'close', 'retry-after': '1' });
  }
}

/** Every error the router answers, in OpenAI's shape, whatever threw it. */
@Catch()
export class OpenAiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('LlmRouter');

  catch(exception: unknown, host: ArgumentsHost): void {
    this.send(host.switchToHttp().getResponse<FastifyReply>(), exception);
  }

  /** Answers `exception` in OpenAI's shape, unless an answer has started (the lean /v1 routes call this directly). */
  send(reply: FastifyReply, exception: unknown): void {
    if (reply.sent || reply.raw.headersSent) return;
    const error = this.toOpenAi(exception);
    void reply.status(error.status).headers(error.headers).send(error.body);
  }

  /** The same on a raw response (the lean /v1 routes and the proxy write their answers themselves). */
  sendRaw(res: ServerResponse, exception: unknown): void {
    if (res.headersSent || res.writableEnded) return;
    const error = this.toOpenAi(exception);
    const json = JSON.stringify(error.body);
    res.writeHead(error.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...error.headers });
    res.end(json);
  }

  private toOpenAi(exception: unknown): OpenAiError {
    if (exception instanceof OpenAiError) return exception;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const message = exception.message;
      if (status === 404) return new OpenAiError(404, `Unknown route: ${message}`, 'invalid_request_error', 'unknown_url');
      if (status === 413) return new OpenAiError(413, 'Request body is larger than the limit (BODY_LIMIT_BYTES)', 'invalid_request_error', 'request_too_large');
      if (status < 500) return new OpenAiError(status, message, 'invalid_request_error', 'invalid_request');
    }
    this.logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
    return new OpenAiError(500, 'The router failed to handle the request', 'server_error', 'internal_error');
  }
}
