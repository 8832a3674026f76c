// End-to-end tests: a real telekernd (TELEKERND) serving the built console
// (TELEKERN_WEB_DIR), driven by Debian's chromium through playwright-core.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
