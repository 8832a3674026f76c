// `make bench`: the console's load budget (tests/bench), printed, not asserted.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/bench/**/*.bench-run.ts'],
    environment: 'node',
    testTimeout: 180_000,
    hookTimeout: 60_000,
    disableConsoleIntercept: true,
  },
});
