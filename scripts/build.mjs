#!/usr/bin/env node
// The CLI's build: src/commands/**/*.ts and src/hooks/*.ts bundled by esbuild into OUT (default
// dist/), one file per command and per hook (where package.json's oclif section finds them) and the
// code they share in OUT/chunks/. The dependencies are
// bundled too, except oclif's, which bin/run.js and the plugins load from node_modules.
//
// Why a bundle: a step pod is one short kata-lcm process, and @kubernetes/client-node alone is
// about a thousand ES modules; resolving and linking them was most of a step's start-up (numbers
// in docs/performance.md). Types are checked by `npm run typecheck`, not here.
//
//   node scripts/build.mjs [OUT]
import { readdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist'))

const entries = (dir) =>
  readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name))

rmSync(out, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: [...entries('src/commands'), ...entries('src/hooks')],
  outbase: path.join(root, 'src'),
  outdir: out,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: true,
  // Less to parse at every start; names are kept, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  packages: 'bundle',
  external: ['@oclif/*'],
  // CommonJS dependencies bundled into an ES module still call require() (node: built-ins).
  banner: {
    js: "import { createRequire as __kataLcmRequire } from 'node:module'; const require = __kataLcmRequire(import.meta.url);",
  },
  logLevel: 'warning',
})
