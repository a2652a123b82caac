// @switchboard/client/nest: SwitchboardModule for NestJS applications (built against the app's own @nestjs/common).
import {
  BeforeApplicationShutdown,
  DynamicModule,
  Global,
  Inject,
  Injectable,
  MiddlewareConsumer,
  Module,
  ModuleMetadata,
  NestMiddleware,
  NestModule,
  OnApplicationShutdown,
  Optional,
  Provider,
} from '@nestjs/common';
import { DrainOptions, register, RegisterOptions, ServiceRegistration, SwitchboardClient, SwitchboardClientOptions } from '../index';

export interface SwitchboardModuleOptions {
  /** Join as this service: register, heartbeat with the load of every request, drain on shutdown. Omit for a caller only. */
  service?: RegisterOptions & { drain?: DrainOptions };
  /** Discover and call by name (`SwitchboardClient`), with these options; `false` for a service that calls nobody. Default `{}`. */
  client?: SwitchboardClientOptions | false;
}

export interface SwitchboardModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: (string | symbol | (abstract new (...args: never[]) => unknown))[];
  useFactory: (...args: never[]) => SwitchboardModuleOptions | Promise<SwitchboardModuleOptions>;
}

/** Injection token of this service's {@link ServiceRegistration} (absent when the module has no `service`). */
export const SWITCHBOARD_SERVICE = Symbol('SWITCHBOARD_SERVICE');
const SWITCHBOARD_MODULE_OPTIONS = Symbol('SWITCHBOARD_MODULE_OPTIONS');

/** `@InjectService() service: ServiceRegistration`. */
export const InjectService = (): ParameterDecorator => Inject(SWITCHBOARD_SERVICE);

/** Counts every request for the heartbeats' load figures (express and fastify adapters: Nest hands middleware the raw request and response). */
@Injectable()
class LoadCountingMiddleware implements NestMiddleware {
  private readonly handle?: ReturnType<ServiceRegistration['middleware']['express']>;

  constructor(@Optional() @Inject(SWITCHBOARD_SERVICE) service?: ServiceRegistration) {
    this.handle = service?.middleware.express();
  }

  use(req: never, res: never, next: (error?: unknown) => void): void {
    if (this.handle) this.handle(req, res, next);
    else next();
  }
}

/** Leaves cleanly on shutdown: the service drains (no new traffic, in-flight requests finish, deregistered), then the client closes. */
@Injectable()
class SwitchboardLifecycle implements BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(
    @Inject(SWITCHBOARD_MODULE_OPTIONS) private readonly options: SwitchboardModuleOptions,
    @Optional() @Inject(SWITCHBOARD_SERVICE) private readonly service?: ServiceRegistration,
    @Optional() @Inject(SwitchboardClient) private readonly client?: SwitchboardClient,
  ) {}

  // Before the HTTP server closes: requests that still arrive while routers learn of the drain are served.
  async beforeApplicationShutdown(): Promise<void> {
    await this.service?.drain(this.options.service?.drain);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client?.close();
  }
}

function providers(optionsProvider: Provider): Provider[] {
  return [
    optionsProvider,
    {
      provide: SWITCHBOARD_SERVICE,
      inject: [SWITCHBOARD_MODULE_OPTIONS],
      useFactory: (options: SwitchboardModuleOptions) => (options.service ? register(options.service) : undefined),
    },
    {
      provide: SwitchboardClient,
      inject: [SWITCHBOARD_MODULE_OPTIONS],
      useFactory: (options: SwitchboardModuleOptions) => (options.client === false ? undefined : SwitchboardClient.connect(options.client ?? {})),
    },
    SwitchboardLifecycle,
  ];
}

/**
 * Switchboard in a NestJS app: `SwitchboardModule.forRoot({ service: { serviceName, internalPort } })`
 * registers the app and heartbeats with the load of every request it serves, provides a
 * {@link SwitchboardClient} to inject, and drains and deregisters on shutdown (call
 * `app.enableShutdownHooks()` or close the app on SIGTERM). Global: import it once, in the root module.
 */
@Global()
@Module({})
export class SwitchboardModule implements NestModule {
  static forRoot(options: SwitchboardModuleOptions = {}): DynamicModule {
    return {
      module: SwitchboardModule,
      providers: providers({ provide: SWITCHBOARD_MODULE_OPTIONS, useValue: options }),
      exports: [SWITCHBOARD_SERVICE, SwitchboardClient],
    };
  }

  static forRootAsync(options: SwitchboardModuleAsyncOptions): DynamicModule {
    return {
      module: SwitchboardModule,
      imports: options.imports,
      providers: providers({ provide: SWITCHBOARD_MODULE_OPTIONS, inject: options.inject ?? [], useFactory: options.useFactory }),
      exports: [SWITCHBOARD_SERVICE, SwitchboardClient],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(LoadCountingMiddleware).forRoutes('*');
  }
}
