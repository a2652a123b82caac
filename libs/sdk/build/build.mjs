#!/usr/bin/env node
// Builds @switchboard/client into dist/libs/sdk as a package people outside the monorepo install:
// - index.js: one CommonJS bundle of the SDK and the internal libs it uses (routing table, contracts,
//   messaging, config), with npm packages left external; each external must be a dependency in
//   libs/sdk/package.json (checked here). The apps' NestJS decorators, Swagger metadata and pino module
//   are replaced by inert shims (build/shims), so a plain Node caller needs none of NestJS.
// - nest.js: SwitchboardModule, against the application's own @nestjs/common (a peer dependency),
//   reusing index.js.
// - *.d.ts of the SDK's own sources only (its public types never name an internal lib: checked;
//   declarations marked @internal are left out).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SDK = join(ROOT, 'libs/sdk');
const OUT = join(ROOT, 'dist/libs/sdk');
const pkg = JSON.parse(readFileSync(join(SDK, 'package.json'), 'utf8'));
const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
const SHIMS = {
  '@nestjs/common': join(SDK, 'build/shims/nestjs-common.cjs'),
  '@nestjs/swagger': join(SDK, 'build/shims/decorators-only.cjs'),
  'nestjs-pino': join(SDK, 'build/shims/decorators-only.cjs'),
};

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

const packageName = (path) => (path.startsWith('@') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]);

/** npm packages stay external; internal @switchboard/* libs are bundled (tsconfig paths); `shims` replace some packages. */
const externals = (shims, self) => ({
  name: 'switchboard-externals',
  setup(b) {
    // The Nest entry reuses the main bundle instead of carrying a second copy of the SDK.
    b.onResolve({ filter: /^\.\.\/index$/ }, (args) => (self && args.importer.endsWith(join('src', 'nest', 'index.ts')) ? { path: './index.js', external: true } : undefined));
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { external: true };
      if (args.path.startsWith('@switchboard/')) return undefined;
      const name = packageName(args.path);
      if (shims[name]) return { path: shims[name] };
      return { path: args.path, external: true };
    });
  },
});

async function bundle(entry, outfile, shims, self = false) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    tsconfig: join(ROOT, 'tsconfig.base.json'),
    plugins: [externals(shims, self)],
    metafile: true,
    sourcemap: true,
    logLevel: 'warning',
  });
  const used = new Set();
  for (const input of Object.values(result.metafile.inputs)) for (const imp of input.imports) if (imp.external && !/^(node:|\.\/|<)/.test(imp.path)) used.add(packageName(imp.path));
  const missing = [...used].filter((name) => !allowed.has(name));
  if (missing.length) throw new Error(`${relative(ROOT, entry)} needs ${missing.join(', ')}: add to libs/sdk/package.json dependencies (or shim it)`);
  return used;
}

const core = await bundle(join(SDK, 'src/index.ts'), join(OUT, 'index.js'), SHIMS);

// A shim must export every name the bundle takes from it (esbuild copies a CommonJS module's own keys).
const bundled = readFileSync(join(OUT, 'index.js'), 'utf8');
for (const [name, file] of Object.entries(SHIMS)) {
  const exported = new Set(Object.keys((await import(file)).default));
  // esbuild names the binding after the import path's last segment: import_common, import_common2, …
  const variable = `import_${name.split('/').pop().replace(/[^A-Za-z0-9]+/g, '_')}`;
  for (const [, used] of bundled.matchAll(new RegExp(`\\b${variable}\\d*\\.([A-Za-z_$][\\w$]*)`, 'g'))) {
    if (!exported.has(used)) throw new Error(`the bundle uses ${name}'s ${used}, which ${relative(ROOT, file)} does not export`);
  }
}
const nest = await bundle(join(SDK, 'src/nest/index.ts'), join(OUT, 'nest.js'), {}, true);

// Declarations: tsc emits the whole program; keep the SDK's own files and refuse any that name an internal lib.
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(SDK, 'tsconfig.dts.json')], { stdio: 'inherit' });
const emitted = join(OUT, 'types/libs/sdk/src');
const walk = (dir) => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
for (const file of walk(emitted)) {
  const text = readFileSync(file, 'utf8');
  const internal = /from ['"](@switchboard\/(?!client)[^'"]+)['"]/.exec(text);
  if (internal) throw new Error(`${relative(emitted, file)}: its public types import ${internal[1]}, which is not published; declare the type in libs/sdk`);
  const target = join(OUT, relative(emitted, file));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
}
rmSync(join(OUT, 'types'), { recursive: true, force: true });
writeFileSync(join(OUT, 'nest.d.ts'), "export * from './nest/index';\n");
// The declarations must stand alone (a stripped @internal type still named by a public one would not).
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--types', 'node', join(OUT, 'index.d.ts'), join(OUT, 'nest.d.ts')], { stdio: 'inherit' });

cpSync(join(SDK, 'README.md'), join(OUT, 'README.md'));
writeFileSync(
  join(OUT, 'package.json'),
  `${JSON.stringify({ ...pkg, exports: { '.': { types: './index.d.ts', default: './index.js' }, './nest': { types: './nest.d.ts', default: './nest.js' }, './package.json': './package.json' } }, null, 2)}\n`,
);
process.stdout.write(`@switchboard/client ${pkg.version} built in ${relative(ROOT, OUT)} (external: ${[...new Set([...core, ...nest])].sort().join(', ')})\n`);
