import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import type { Observable } from 'rxjs';

/**
 * Names the HTTP server span after the route (`PUT /api/v2/services/registry/:serviceId/status`) and
 * sets `http.route`: the http instrumentation knows only the method, so Jaeger would list every
 * operation as `GET`/`POST`. Installed by ObservabilityModule only while tracing runs.
 */
@Injectable()
export class TraceRouteInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const span = trace.getActiveSpan();
    if (span && context.getType() === 'http') {
      const request = context.switchToHttp().getRequest<{ method?: string; routeOptions?: { url?: string } }>();
      const route = request.routeOptions?.url;
      if (route) {
        span.setAttribute('http.route', route);
        span.updateName(`${request.method ?? ''} ${route}`.trim());
      }
    }
    return next.handle();
  }
}
