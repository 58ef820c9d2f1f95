import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'chart/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The domain is pure TypeScript over ports: no Kubernetes client, no subprocesses, no terminal code.
    files: ['src/lifecycle/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['@kubernetes/client-node', 'execa', 'listr2', 'chalk', 'node:child_process', 'child_process'].map((name) => ({
          name, message: 'src/lifecycle talks to the world only through src/ports.',
        })),
        patterns: [{ group: ['**/adapters/**', '**/ui/**', '**/commands/**'], message: 'src/lifecycle depends on src/ports only.' }],
      }],
    },
  },
  {
    files: ['src/ports/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['@kubernetes/client-node', 'execa', 'listr2', 'chalk'].map((name) => ({ name, message: 'ports are plain interfaces.' })),
      }],
    },
  },
)
