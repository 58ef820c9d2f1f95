/**
 * kata-lcm as a user installs it: `npm pack`, `npm install -g --prefix DIR` of the tarball (its
 * dependencies from the registry, as a user's install would fetch them), then the installed
 * `kata-lcm` binary run against the test cluster, and `kubectl kata-lcm` (the test bed's kubectl
 * finding the installed kubectl-kata_lcm on PATH).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { e2eCluster, envWithTools, REPO_ROOT, run } from '../harness/cluster.js'
import { useWorlds, World } from '../lifecycle/world.js'

interface PackResult {
  filename: string
  size: number
  unpackedSize: number
  files: { path: string }[]
}

const open = useWorlds()
let dir = ''
let packed: PackResult
let installed = ''
// The installed bin's `#!/usr/bin/env node` must find the Node the project runs on (>= 22).
const env = () =>
  envWithTools({
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${envWithTools().PATH}`,
    CI: 'true',
    NO_COLOR: '1',
  })

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-pack-'))
  const pack = await run('npm', ['pack', '--json', '--pack-destination', dir], { env: env() })
  expect(pack.code, pack.stderr).toBe(0)
  packed = (JSON.parse(pack.stdout) as PackResult[])[0]!
  const prefix = path.join(dir, 'prefix')
  const install = await run(
    'npm',
    ['install', '-g', '--no-audit', '--no-fund', '--prefix', prefix, path.join(dir, packed.filename)],
    { env: env() },
  )
  expect(install.code, install.stderr).toBe(0)
  installed = path.join(prefix, 'bin', 'kata-lcm')
}, 300_000)

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('the npm package', () => {
  it('holds the compiled CLI and the chart, and no tests, TypeScript sources or source maps', () => {
    const files = packed.files.map((f) => f.path)
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/run.js',
        'bin/kubectl-kata_lcm.js',
        'dist/commands/upgrade.js',
        'chart/Chart.yaml',
        'chart/values.schema.json',
        'oclif.manifest.json',
        'README.md',
      ]),
    )
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('bench/'))).toEqual([])
    expect(files.filter((f) => /\.(ts|mts|cts)$/.test(f) || f.endsWith('.map'))).toEqual([])
    process.stderr.write(
      `npm pack: ${packed.filename} ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${files.length} files\n`,
    )
  })

  it("is as big as README says (its figures within a quarter of npm pack's)", async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8')
    const [, kB, MB, count] = /about (\d+) kB packed, ([\d.]+) MB unpacked, (\d+) files/.exec(readme) ?? []
    expect(kB, 'README: "about N kB packed, M MB unpacked, K files"').toBeDefined()
    const ratios = {
      packed: packed.size / (Number(kB) * 1e3),
      unpacked: packed.unpackedSize / (Number(MB) * 1e6),
      files: packed.files.length / Number(count),
    }
    for (const [what, ratio] of Object.entries(ratios)) {
      expect(ratio, what).toBeGreaterThan(0.75)
      expect(ratio, what).toBeLessThan(1.25)
    }
  })

  it('installs with npm install -g and runs: --help, --version, status against the cluster, and kubectl kata-lcm status', async () => {
    const help = await run(installed, ['--help'], { env: env() })
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toMatch(/upgrade\s+Upgrade kata-deploy/)
    expect(help.stdout).toMatch(/autocomplete/)
    const version = await run(installed, ['--version'], { env: env() })
    expect(version.stdout).toMatch(/^kata-lcm\/\d+\.\d+\.\d+ /)

    const w = await open({ nodes: [{ name: World.nodeName('pkg', 'x', 1) }], version: '3.27.0' })
    const status = await run(
      installed,
      [
        'status',
        '--json',
        '--kubeconfig',
        e2eCluster().kubeconfigPath,
        '--helm-namespace',
        w.namespace,
        '--node-selector',
        `kata-lcm.test/world=${w.id}`,
      ],
      { env: env() },
    )
    expect(status.code, status.stderr).toBe(0)
    const report = JSON.parse(status.stdout) as {
      release: { chartVersion?: string }
      rows: { node: string; version: string }[]
    }
    expect(report.release.chartVersion).toBe('3.27.0')
    expect(report.rows.map((r) => r.node)).toEqual(w.nodeNames)

    // kubectl runs the plugin it finds on PATH: the installed package's bin dir, where npm -g puts it.
    const withPlugin = env()
    withPlugin.PATH = `${path.dirname(installed)}${path.delimiter}${withPlugin.PATH}`
    const plugins = await run('kubectl', ['plugin', 'list', '--name-only'], { env: withPlugin })
    expect(plugins.stdout).toMatch(/^kubectl-kata_lcm$/m)
    const viaKubectl = await run(
      'kubectl',
      [
        'kata-lcm',
        'status',
        '-o',
        'yaml',
        '--kubeconfig',
        e2eCluster().kubeconfigPath,
        '--helm-namespace',
        w.namespace,
        '--node-selector',
        `kata-lcm.test/world=${w.id}`,
      ],
      { env: withPlugin },
    )
    expect(viaKubectl.code, viaKubectl.stderr).toBe(0)
    expect(parse(viaKubectl.stdout)).toEqual(JSON.parse(status.stdout))
  })
})
