import type { LoadMeter, MeteredRequest, MeteredResponse } from './load-meter';

/** Express (or Connect) middleware: `app.use(service.middleware.express())`. */
export type ExpressMiddleware = (req: MeteredRequest, res: MeteredResponse, next: (error?: unknown) => void) => void;

/** The part of a Fastify instance the hook needs. */
export interface FastifyLike {
  addHook(name: 'onRequest', hook: (request: { raw: MeteredRequest }, reply: { raw: MeteredResponse }, done: () => void) => void): unknown;
}

/** A Fastify plugin (`app.register(plugin)`), applied to the root instance (not encapsulated). */
export interface FastifyPlugin {
  (instance: FastifyLike, options: unknown, done: () => void): void;
}

/** A node:http request handler. */
export type NodeHandler<Req extends MeteredRequest, Res extends MeteredResponse> = (req: Req, res: Res) => unknown;

/** Request counters for the frameworks a service may run on; each feeds the same {@link LoadMeter}. */
export interface LoadMiddleware {
  /** `app.use(middleware.express())`: counts every request until its response finishes or closes. */
  express(): ExpressMiddleware;
  /**
   * `middleware.fastify(app)` adds an `onRequest` hook to `app` (and returns it); without an argument,
   * a plugin for `app.register(...)` that does the same on the root instance.
   */
  fastify(): FastifyPlugin;
  fastify<T extends FastifyLike>(app: T): T;
  /** Wraps a node:http handler: `http.createServer(middleware.node((req, res) => …))`. */
  node<Req extends MeteredRequest, Res extends MeteredResponse>(handler: NodeHandler<Req, Res>): NodeHandler<Req, Res>;
}

/** @internal */
export function loadMiddleware(meter: LoadMeter): LoadMiddleware {
  const hook = (request: { raw: MeteredRequest }, reply: { raw: MeteredResponse }, done: () => void) => {
    meter.track(request.raw, reply.raw);
    done();
  };
  function fastify(): FastifyPlugin;
  function fastify<T extends FastifyLike>(app: T): T;
  function fastify<T extends FastifyLike>(app?: T): T | FastifyPlugin {
    if (app) {
      app.addHook('onRequest', hook);
      return app;
    }
    const plugin: FastifyPlugin = (instance, _options, done) => {
      instance.addHook('onRequest', hook);
      done();
    };
    // fastify-plugin's marker: the hook applies to the instance registering it, not a child context.
    (plugin as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
    (plugin as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'switchboard-load';
    return plugin;
  }
  return {
    express: () => (req, res, next) => {
      meter.track(req, res);
      next();
    },
    fastify,
    node: (handler) => (req, res) => {
      meter.track(req, res);
      return handler(req, res);
    },
  };
}
