import nx from '@nx/eslint-plugin';

const TEST_FILES = ['**/*.spec.ts', '**/*.integration-spec.ts', '**/*.e2e-spec.ts', '**/src/testing/**/*.ts', 'apps/*-e2e/**/*.ts'];

/**
 * Module boundaries on two axes (see ARCHITECTURE.md):
 * - type: app -> feature -> data-access -> util/contracts; contracts depend on nothing but contracts.
 * - scope: an app's scope may use its own scope and `shared`; only registry-api may reach the
 *   persistence lib (scope:registry), which keeps PostgreSQL single-writer by construction.
 * The test harness (type:testing) is open to test files only, never to shipped code.
 */
function boundaries(testing) {
  const withTesting = (tags) => (testing ? [...tags, 'type:testing'] : tags);
  return [
    'error',
    {
      // The one buildable lib, the client SDK, bundles the libs it uses into its package (libs/sdk/build).
      enforceBuildableLibDependency: false,
      banTransitiveDependencies: true,
      allow: [],
      depConstraints: [
        { sourceTag: 'type:app', onlyDependOnLibsWithTags: withTesting(['type:feature', 'type:data-access', 'type:contracts', 'type:util']) },
        { sourceTag: 'type:feature', onlyDependOnLibsWithTags: withTesting(['type:data-access', 'type:contracts', 'type:util']) },
        { sourceTag: 'type:data-access', onlyDependOnLibsWithTags: withTesting(['type:data-access', 'type:contracts', 'type:util']) },
        { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['type:testing', 'type:feature', 'type:data-access', 'type:contracts', 'type:util'] },
        { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:data-access', 'type:contracts', 'type:util'] },
        { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts'] },
        { sourceTag: 'type:util', onlyDependOnLibsWithTags: withTesting(['type:util']) },
        { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
        { sourceTag: 'scope:registry', onlyDependOnLibsWithTags: ['scope:registry', 'scope:shared'] },
        { sourceTag: 'scope:prober', onlyDependOnLibsWithTags: ['scope:prober', 'scope:shared'] },
        { sourceTag: 'scope:cache', onlyDependOnLibsWithTags: ['scope:cache', 'scope:shared'] },
        { sourceTag: 'scope:router', onlyDependOnLibsWithTags: ['scope:router', 'scope:shared'] },
        { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['scope:cli', 'scope:shared'] },
        // The console runs in a browser: it may use nothing of the Node libs (it has its own feed types).
        { sourceTag: 'scope:console', onlyDependOnLibsWithTags: ['scope:console'] },
      ],
    },
  ];
}

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/.nx', '**/tmp'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries(false),
      '@typescript-eslint/no-explicit-any': 'error',
      // Env classes annotate even obvious types: class-transformer converts env strings by the emitted type.
      '@typescript-eslint/no-inferrable-types': ['error', { ignoreProperties: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { patterns: [{ group: ['../../*'], message: 'Import another project through its @switchboard/* alias, not by climbing folders.' }] }],
    },
  },
  {
    files: TEST_FILES,
    rules: {
      '@nx/enforce-module-boundaries': boundaries(true),
      // Tests read JSON responses whose shape the assertions check.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
];
