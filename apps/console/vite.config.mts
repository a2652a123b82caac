import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

// registry-api serves the built files at /console/ (apps/registry-api/src/console/console-static.util.ts).
// esbuild compiles the TSX (React's automatic runtime); no Vite plugin is needed for a production build.
export default defineConfig({
  root,
  base: '/console/',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: fileURLToPath(new URL('../../dist/apps/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    // `npx vite --config apps/console/vite.config.mts` during development: the API is registry-api's.
    proxy: { '/console/api': 'http://127.0.0.1:3013', '/api': 'http://127.0.0.1:3013' },
  },
});
