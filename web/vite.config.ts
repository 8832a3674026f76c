// Builds the console into TELEKERN_WEB_OUT (CMake passes
// build/share/telekern/web) or dist/. No CDN: everything is bundled.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: process.env.TELEKERN_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // One entry chunk; the app is small and charts are needed on first load.
    chunkSizeWarningLimit: 400,
    modulePreload: { polyfill: false },
  },
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
  },
});
