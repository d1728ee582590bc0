import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real onnxruntime sessions, real servers on loopback: give slow CI machines room.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: run files in parallel but not more than the machine has.
    maxWorkers: 2,
    allowOnly: false,
    // A temporary folder per test file, removed after it: CDK's default outdirs went there and stayed (see the file).
    setupFiles: ['test/temp-dir.setup.ts'],
  },
});
