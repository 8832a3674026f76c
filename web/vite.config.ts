// Builds the console into TELEKERN_WEB_OUT (CMake passes
// build/share/telekern/web) or dist/. No CDN: everything is bundled.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, Plugin } from 'vite';

// Writes NAME.js.br and NAME.js.gz beside each built script: telekernd sends
// them as they are to clients that accept them (compressing on every request
// at brotli's best quality costs more than the whole first load).
function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'telekern-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    writeBundle() {
      const assets = join(outDir, 'assets');
      for (const name of readdirSync(assets)) {
        if (!name.endsWith('.js')) continue;
        const body = readFileSync(join(assets, name));
        writeFileSync(join(assets, `${name}.br`), brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
        writeFileSync(join(assets, `${name}.gz`), gzipSync(body, { level: 9 }));
      }
    },
  };
}

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  plugins: [precompress()],
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
