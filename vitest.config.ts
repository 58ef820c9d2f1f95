import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Unit tests run beside the e2e suites (and, on a fresh machine, the Argo binaries' Go
          // builds) on 2 cores: one that runs the real helm or argo binary, idle well under a
          // second, took 5 s there (vitest's default limit) and failed a CI run. 30 s still ends a hang.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.e2e.test.ts'],
          globalSetup: ['test/e2e/harness/global-setup.ts'],
          // One control plane on a 2-core machine: suites share it and run one at a time.
          fileParallelism: false,
          testTimeout: 240_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
})
