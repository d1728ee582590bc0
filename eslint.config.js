/**
 * ESLint runs one rule, on shipped code only: typescript-eslint's type-aware `no-floating-promises`. Biome (biome.json)
 * does everything else; its own `noFloatingPromises` infers types without the TypeScript checker and misses promises
 * typed by libraries (a static `InferenceSession.create`, `node:fs/promises`), which this rule sees through tsc.
 */
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig({
  files: ['functions/**/*.ts', 'infra/**/*.ts'],
  languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true } },
  plugins: { '@typescript-eslint': tseslint.plugin },
  linterOptions: { reportUnusedDisableDirectives: 'error' },
  rules: { '@typescript-eslint/no-floating-promises': 'error' },
});
