import { hostname } from 'node:os';
import { Controller, DynamicModule, Get, Header, Module, SetMetadata } from '@nestjs/common';
import type { RouteInfo } from '@nestjs/common/interfaces';
import { ApiExcludeController } from '@nestjs/swagger';
import { LoggerModule } from 'nestjs-pino';
import { collectDefaultMetrics, register } from 'prom-client';
import { REDACTED_PATHS, redactUrlCredentials } from './log-redaction.util';
import { TraceRouteInterceptor } from './tracing/trace-route.util';
import { tracingStarted } from './tracing/tracing-env.util';


/** Marks a route as open to anyone (health, metrics): apps' auth guards let it through. */
export const PUBLIC_ROUTE = 'switchboard:public';
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

@ApiExcludeController()
@Public()
@Controller('metrics')
export class MetricsController {
  @Get()
  @Header('Content-Type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}

export interface ObservabilityOptions {
  /** The app's name, on every log line and as the `app` label of every metric. */
  app: string;
  logLevel?: string;
  /**
   * Hot read routes that get no per-request logger (pino-http builds three child loggers per
   * request, and at info level writes a line for each): their traffic shows in metrics instead.
   */
  unloggedRoutes?: RouteInfo[];
}

let defaultMetricsStarted = false;

/** Structured logs (pino, secrets redacted) and Prometheus `/metrics` for one app. */
@Module({})
export class ObservabilityModule {
  static forRoot(options: ObservabilityOptions): DynamicModule {
    if (!defaultMetricsStarted) {
      register.setDefaultLabels({ app: options.app });
      collectDefaultMetrics();
      defaultMetricsStarted = true;
    }
    return {
      module: ObservabilityModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            name: options.app,
            level: options.logLevel ?? 'info',
            redact: { paths: REDACTED_PATHS, censor: '***' },
            hooks: { logMethod: redactUrlCredentials },
            autoLogging: { ignore: (req) => req.url === '/metrics' || req.url === '/health' },
            // In the base bindings rather than customProps, which would cost a child logger per request.
            base: { pid: process.pid, hostname: hostname(), app: options.app },
            quietReqLogger: true,
          },
          exclude: options.unloggedRoutes,
        }),
      ],
      controllers: [MetricsController],
      // Without tracing, not even an interceptor in the request path. The token is @nestjs/core's
      // APP_INTERCEPTOR, spelled out: the SDK bundles this lib without @nestjs/core.
      providers: tracingStarted() ? [{ provide: 'APP_INTERCEPTOR', useClass: TraceRouteInterceptor }] : [],
    };
  }
}
