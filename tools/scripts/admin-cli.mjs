#!/usr/bin/env node
// `npx admin-cli …` (the root package.json's bin): runs the built CLI, building it first when
// dist/ has none (a fresh `npm ci`). Rebuild after changing its sources: `npx nx build admin-cli`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = join(root, 'dist/apps/admin-cli/apps/admin-cli/src/main.js');

if (!existsSync(main)) {
  process.stderr.write('admin-cli: building it first (once)…\n');
  const bin = (name) => join(root, 'node_modules/.bin', name);
  for (const [tool, args] of [[bin('tsc'), ['-p', 'apps/admin-cli/tsconfig.app.json']], [bin('tsc-alias'), ['-p', 'apps/admin-cli/tsconfig.app.json']]]) {
    const run = spawnSync(tool, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    if (run.status !== 0) {
      process.stderr.write(`admin-cli: the build failed (${tool} ${args.join(' ')}); run npm ci, then npx nx build admin-cli\n`);
      process.exit(1);
    }
  }
}
// In this process: argv, stdio, signals and the exit code are the CLI's own.
createRequire(import.meta.url)(main);
