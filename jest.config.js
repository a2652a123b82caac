// One jest run, three tiers: fast unit specs; integration specs against real PostgreSQL/NATS/Redis
// provided by the harness in libs/testing; e2e specs that drive the built apps as processes
// (see ARCHITECTURE.md).
const { compilerOptions } = require('./tsconfig.base.json');

const moduleNameMapper = Object.fromEntries(
  Object.entries(compilerOptions.paths).map(([alias, [target]]) => [
    `^${alias.replace('/', '\\/')}$`,
    `<rootDir>/${target}`,
  ]),
);

const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        target: 'es2022',
        keepClassNames: true,
      },
      module: { type: 'commonjs' },
      sourceMaps: 'inline',
    },
  ],
};

const common = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform,
  moduleNameMapper,
  moduleFileExtensions: ['ts', 'js', 'json'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // dist/libs/sdk/package.json is @switchboard/client too (the built package): keep jest's module map on the sources.
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  // main.ts loads it in production; decorators in a module tested alone need it too.
  setupFiles: ['reflect-metadata'],
};

const slow = {
  globalTeardown: '<rootDir>/libs/testing/src/lib/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/libs/testing/src/lib/jest-setup.ts'],
};

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
    {
      ...common,
      ...slow,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs}/**/*.integration-spec.ts'],
      globalSetup: '<rootDir>/libs/testing/src/lib/global-setup.ts',
    },
    {
      ...common,
      ...slow,
      displayName: 'e2e',
      testMatch: ['<rootDir>/apps/*-e2e/src/**/*.e2e-spec.ts'],
      // The built apps run as processes: `npm test` builds them first (nx run-many -t build).
      globalSetup: '<rootDir>/libs/testing/src/lib/global-setup.ts',
    },
  ],
};
