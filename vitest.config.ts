import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Crash tests spawn real processes; two cores, so keep files from oversubscribing them.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
