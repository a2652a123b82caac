import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { FieldError } from '@switchboard/contracts';
import { LogThrottle } from '@switchboard/observability';
import { isDatabaseUnavailable } from '../database/database-unavailable.util';

export enum RegistryErrorCode {
  ValidationFailed = 'VALIDATION_FAILED',
  InstanceNotFound = 'INSTANCE_NOT_FOUND',
  ServiceNotFound = 'SERVICE_NOT_FOUND',
  NoRoutableInstance = 'NO_ROUTABLE_INSTANCE',
  ModelNotFound = 'MODEL_NOT_FOUND',
  TokenMissing = 'TOKEN_MISSING',
  TokenInvalid = 'TOKEN_INVALID',
  ProberUnavailable = 'PROBER_UNAVAILABLE',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  DatabaseUnavailable = 'DATABASE_UNAVAILABLE',
  ConsoleBusy = 'CONSOLE_BUSY',
  Internal = 'INTERNAL_ERROR',
}

const STATUS_BY_CODE: Record<RegistryErrorCode, number> = {
  [RegistryErrorCode.ValidationFailed]: HttpStatus.BAD_REQUEST,
  [RegistryErrorCode.InstanceNotFound]: HttpStatus.NOT_FOUND,
  [RegistryErrorCode.ServiceNotFound]: HttpStatus.NOT_FOUND,
  [RegistryErrorCode.ModelNotFound]: HttpStatus.NOT_FOUND,
  [RegistryErrorCode.NoRoutableInstance]: HttpStatus.SERVICE_UNAVAILABLE,
  [RegistryErrorCode.TokenMissing]: HttpStatus.UNAUTHORIZED,
  [RegistryErrorCode.TokenInvalid]: HttpStatus.FORBIDDEN,
  [RegistryErrorCode.ProberUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [RegistryErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [RegistryErrorCode.DatabaseUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [RegistryErrorCode.ConsoleBusy]: HttpStatus.SERVICE_UNAVAILABLE,
  [RegistryErrorCode.Internal]: HttpStatus.INTERNAL_SERVER_ERROR,
};

/** A failure a client can act on; mapped to HTTP once, by {@link RegistryExceptionFilter}. */
export class RegistryException extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
  }

  get status(): number {
    return STATUS_BY_CODE[this.code];
  }

  static validation(errors: FieldError[]): RegistryException {
    return new RegistryException(
      RegistryErrorCode.ValidationFailed,
      `Validation failed: ${errors.map((e) => e.reason).join('; ')}`,
      errors,
    );
  }

  static instanceNotFound(serviceId: string): RegistryException {
    return new RegistryException(RegistryErrorCode.InstanceNotFound, `service instance not found in registry: ${serviceId}`);
  }

  static modelNotFound(modelName: string, environment: string): RegistryException {
    return new RegistryException(RegistryErrorCode.ModelNotFound, `model not found in registry: ${modelName} (environment: ${environment})`);
  }
}

interface ErrorBody {
  success: false;
  statusCode: number;
  error: string;
  message: string;
  errors?: FieldError[];
}

/** Every error leaves as `{ success: false, statusCode, error: CODE, message, errors? }`. */
@Catch()
export class RegistryExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('RegistryApi');
  private readonly unavailableLog = new LogThrottle(1000);

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (exception instanceof HttpException && isHealthReport(exception.getResponse())) {
      // Terminus' report already says which dependency is down; keep its shape.
      void reply.status(exception.getStatus()).send(exception.getResponse());
      return;
    }
    const body = this.toBody(exception);
    if (body.statusCode >= 500 && body.error === RegistryErrorCode.Internal) {
      this.logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
    }
    if (body.error === RegistryErrorCode.DatabaseUnavailable) {
      // One line a second at most: an outage fails every request in flight at once.
      const suppressed = this.unavailableLog.take();
      if (suppressed !== undefined) this.logger.warn(`request refused, PostgreSQL unavailable: ${(exception as Error).message}${suppressed ? ` (${suppressed} more since the last line)` : ''}`);
      void reply.header('retry-after', '1');
    }
    void reply.status(body.statusCode).send(body);
  }

  private toBody(exception: unknown): ErrorBody {
    if (exception instanceof RegistryException) {
      return { success: false, statusCode: exception.status, error: exception.code, message: exception.message, errors: exception.errors };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const message = typeof response === 'string' ? response : String((response as { message?: unknown }).message ?? exception.message);
      if (status === HttpStatus.BAD_REQUEST) {
        // Malformed JSON and the like, rejected before validation.
        return { success: false, statusCode: status, error: RegistryErrorCode.ValidationFailed, message, errors: [{ field: '(body)', reason: message }] };
      }
      if (status === HttpStatus.PAYLOAD_TOO_LARGE) {
        return { success: false, statusCode: status, error: RegistryErrorCode.PayloadTooLarge, message: `${message} (limit: BODY_LIMIT_BYTES)`, errors: [{ field: '(body)', reason: 'body is larger than the limit' }] };
      }
      return { success: false, statusCode: status, error: HttpStatus[status] ?? 'ERROR', message };
    }
    if (isDatabaseUnavailable(exception)) {
      // The transaction rolled back whole (or, if the connection died as COMMIT was answered, committed
      // whole): nothing half-written, and every write is idempotent, so the client retries.
      const message = 'registry database unavailable (connection lost or failing over): the request was not confirmed; retry it';
      return { success: false, statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: RegistryErrorCode.DatabaseUnavailable, message };
    }
    return { success: false, statusCode: 500, error: RegistryErrorCode.Internal, message: 'Internal server error' };
  }
}

function isHealthReport(response: unknown): boolean {
  return typeof response === 'object' && response !== null && 'details' in response && 'status' in response;
}
