import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Three test files at a time even on two cores (vitest's default is cores - 1, so one): the
    // end-to-end files spend most of their time waiting on the processes they spawn. On an idle
    // 2-core machine the suite (83 files) takes about 5.5 minutes with 3, 7 with 2.
    maxWorkers: 3,
    // Compiles src/ into dist/ first: end-to-end tests spawn bin/tca.js, which runs dist/.
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/setup.ts"],
  },
});
