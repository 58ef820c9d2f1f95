import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import { noImportCycle } from './scripts/lint/import-cycles.mjs'

/**
 * The layers of docs/architecture.md, enforced: each may import only what is below it.
 *   commands, hooks -> ui, lifecycle, ports, deps.ts (never an adapter: src/deps.ts wires them)
 *   ui       -> lifecycle (types and events), ports
 *   lifecycle -> ports (no client-node, execa, listr2, chalk, subprocesses)
 *   adapters -> ports, lifecycle (errors and pure helpers), never commands or ui
 *   ports    -> nothing but the domain's types (its events)
 */
const external = (names, message) => names.map((name) => ({ name, message }))
const layer = (files, { paths = [], groups = [], message }) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { paths, patterns: groups.length ? [{ group: groups, message }] : [] }] },
})
const IO = ['@kubernetes/client-node', 'execa', 'listr2', 'chalk', 'node:child_process', 'child_process']

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'chart/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  layer(['src/commands/**/*.ts', 'src/hooks/**/*.ts', 'src/base-command.ts', 'src/step-command.ts', 'src/flags.ts'], {
    paths: external(
      ['@kubernetes/client-node', 'execa'],
      'commands reach the cluster through src/deps.ts and the domain.',
    ),
    groups: ['**/adapters/**'],
    message: 'commands get adapters from src/deps.ts, never directly.',
  }),
  layer(['src/ui/**/*.ts'], {
    paths: external(['@kubernetes/client-node', 'execa'], 'the UI only draws what the domain reports.'),
    groups: ['**/adapters/**', '**/commands/**', '**/deps.js'],
    message: 'src/ui depends on src/lifecycle and src/ports only.',
  }),
  layer(['src/lifecycle/**/*.ts'], {
    paths: external(IO, 'src/lifecycle talks to the world only through src/ports.'),
    groups: ['**/adapters/**', '**/ui/**', '**/commands/**', '**/deps.js'],
    message: 'src/lifecycle depends on src/ports only.',
  }),
  layer(['src/adapters/**/*.ts'], {
    paths: external(['listr2', 'chalk'], 'adapters talk to the cluster and helm, not to the terminal.'),
    groups: ['**/commands/**', '**/ui/**', '**/deps.js'],
    message: 'src/adapters implement src/ports; they never reach up to commands or the UI.',
  }),
  layer(['src/ports/**/*.ts'], {
    paths: external(IO, 'ports are plain interfaces.'),
    groups: ['**/adapters/**', '**/ui/**', '**/commands/**', '**/deps.js'],
    message: "ports are interfaces: they depend on nothing but the domain's types.",
  }),
  {
    // No function in src/ over 80 lines (blank lines and comments not counted): one a reader takes in whole.
    files: ['src/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
  {
    // No import circle in src/ (scripts/lint/import-cycles.mjs).
    files: ['src/**/*.ts'],
    plugins: { 'kata-lcm': { rules: { 'no-import-cycle': noImportCycle } } },
    rules: { 'kata-lcm/no-import-cycle': ['error', 'src'] },
  },
  {
    // The deployment mode is a strategy: only src/lifecycle/modes/ may branch on its name.
    files: ['src/**/*.ts'],
    ignores: ['src/lifecycle/modes/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'BinaryExpression[operator=/^[!=]==?$/] > Literal[value=/^(daemonset|job)$/]',
          message: 'branching on the deployment mode belongs in src/lifecycle/modes/ (the strategy).',
        },
      ],
    },
  },
)
