import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Where the built console is: CONSOLE_DIR, else dist/apps/console next to this app's dist folder
 * (dist/apps/registry-api/apps/registry-api/src/console → dist/apps/console), else under the
 * working directory (tests run the sources).
 */
export function findConsoleDir(configured?: string): string | undefined {
  const candidates = configured ? [resolve(configured)] : [join(__dirname, '../../../../../console'), resolve('dist/apps/console')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html')));
}

export const CONSOLE_NOT_BUILT = 'The console is not built. Build it with `npx nx run console:build` (npm start builds it), or point CONSOLE_DIR at a built console.\n';

/** Serves the console's files at /console/; without them /console answers a 404 that says how to build it. */
export async function registerConsoleStatic(app: NestFastifyApplication, configured?: string): Promise<string | undefined> {
  const fastify = app.getHttpAdapter().getInstance();
  const dir = findConsoleDir(configured);
  fastify.get('/console', (_request, reply) => {
    if (dir) void reply.redirect('/console/', 302);
    else void reply.code(404).type('text/plain; charset=utf-8').send(CONSOLE_NOT_BUILT);
  });
  if (!dir) {
    fastify.get('/console/*', (_request, reply) => void reply.code(404).type('text/plain; charset=utf-8').send(CONSOLE_NOT_BUILT));
    return undefined;
  }
  await app.register(fastifyStatic as never, { root: dir, prefix: '/console/', decorateReply: false, index: ['index.html'], maxAge: 0 });
  return dir;
}
