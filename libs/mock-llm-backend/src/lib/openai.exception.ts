export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Thrown by handlers and parsers; the error handler answers it in OpenAI's error shape. */
export class OpenAIHttpException extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = errorTypeFor(status),
  ) {
    super(message);
    this.name = 'OpenAIHttpException';
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): OpenAIHttpException {
  return new OpenAIHttpException(400, message, param, code, 'invalid_request_error');
}

export function modelNotFound(model: string): OpenAIHttpException {
  return new OpenAIHttpException(404, `The model \`${model}\` does not exist.`, 'model', 'model_not_found', 'invalid_request_error');
}

// The type and code strings clients (and the router) key their retry decisions on, as OpenAI sends them.
export function errorTypeFor(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function errorCodeFor(status: number): string | null {
  switch (status) {
    case 429:
      return 'rate_limit_exceeded';
    case 502:
      return 'bad_gateway';
    case 503:
      return 'service_unavailable';
    case 504:
      return 'gateway_timeout';
    default:
      return null;
  }
}
