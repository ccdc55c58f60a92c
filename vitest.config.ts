import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two test files at a time even on two cores (vitest's default is cores - 1, so one): the
    // end-to-end files spend most of their time waiting on the processes they spawn, and the
    // suite takes about 4 minutes instead of 6.5 on an idle 2-core machine.
    maxWorkers: 2,
    // Compiles src/ into dist/ first: end-to-end tests spawn bin/tca.js, which runs dist/.
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/setup.ts"],
  },
});
