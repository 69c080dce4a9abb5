// npm run lint runs this (with prettier, clang-format, shellcheck and luacheck: package.json).
// Type-aware rules, the types from tsconfig.json through typescript-eslint's project
// service. `typescript` in node_modules is TypeScript 6's API (@typescript/typescript6):
// TypeScript 7, which type-checks and owns `tsc` (the alias typescript-7), has no API for
// typescript-eslint yet (its peer range ends before 6.1; the 7.x API is announced for 7.1).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['build/', 'native/build/', 'extcap/']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // const { DROPPED: _, ...rest } = o: the rest is what is wanted
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // node:test's describe/it return promises that the runner itself awaits
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
    },
  },
  {
    // plain JavaScript: scripts/*.mjs, and the CommonJS programs the tests start with node
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['test/helpers/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
