/**
 * `kata-lcm status` against a small API server: when helm cannot be run it still shows the nodes,
 * says why on the release line, and exits 7 (README: helm could not be run), not 0; with a fake
 * helm, `-o json|yaml|wide` print the versioned report and the wider table.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import Status from '../../../src/commands/status.js'
import { Annotation } from '../../../src/lifecycle/engine/node-state.js'
import { apiServer, runCli, type ApiServer } from './cli.js'

const NODE = {
  metadata: { name: 'worker-1', labels: { 'kubernetes.io/hostname': 'worker-1' }, annotations: {} },
  spec: {},
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
}

let api: ApiServer
beforeAll(async () => {
  api = await apiServer((method, url) =>
    method === 'GET' && url.startsWith('/api/v1/nodes')
      ? { status: 200, body: { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [NODE] } }
      : undefined,
  )
})
afterAll(async () => api.close())

describe('status', () => {
  it('helm missing: the nodes are still shown, the release line says why, and the exit code is 7', async () => {
    const r = await runCli(Status, ['--kubeconfig', api.kubeconfig], { HELM_BIN: '/nonexistent/helm' })
    expect(r.stdout).toMatch(
      /release kube-system\/kata-deploy \(helm could not be run: helm binary "\/nonexistent\/helm" not found\)/,
    )
    expect(r.stdout).toContain('worker-1')
    expect(r.code).toBe(7)
  })

  it('--json: the report names the problem and the exit code is 7 too', async () => {
    const r = await runCli(Status, ['--kubeconfig', api.kubeconfig, '--json'], { HELM_BIN: '/nonexistent/helm' })
    const report = JSON.parse(r.stdout) as { release: { helmProblem?: string }; rows: { node: string }[] }
    expect(report.release.helmProblem).toMatch(/not found/)
    expect(report.rows.map((row) => row.node)).toEqual(['worker-1'])
    expect(r.code).toBe(7)
  })
})

/** A helm that knows one release, kata-deploy 3.28.0 in kube-system, and answers as helm v4 does. */
const FAKE_HELM = `#!/usr/bin/env bash
case "$1 \${2:-}" in
  "version --short") echo "v4.1.4+gfake" ;;
  "get metadata") echo '{"name":"kata-deploy","chart":"kata-deploy","version":"3.28.0","appVersion":"3.28.0","namespace":"kube-system","revision":3,"status":"deployed"}' ;;
  "status kata-deploy") echo '{"info":{"first_deployed":"2026-11-01T00:00:00Z"}}' ;;
  "get values") echo '{}' ;;
  *) echo "Error: unknown command $*" >&2; exit 64 ;;
esac
`

const node = (name: string, annotations: Record<string, string>, unschedulable = false) => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, fleet: 'o' }, annotations },
  spec: unschedulable ? { unschedulable: true } : {},
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
})

/** One node in each situation status reports: completed, mid-verification, rolled back, untouched. */
const FLEET = [
  node('worker-1', {
    [Annotation.status]: 'completed',
    [Annotation.currentVersion]: '3.28.0',
    [Annotation.runId]: 'run-7',
    [Annotation.previousVersion]: '3.27.0',
    [Annotation.phaseStartedAt]: '2026-12-01T10:00:00Z',
  }),
  node(
    'worker-2',
    {
      [Annotation.status]: 'verifying',
      [Annotation.runId]: 'run-7',
      [Annotation.previousVersion]: '3.27.0',
      [Annotation.cordonedByUs]: 'true',
      [Annotation.phaseStartedAt]: '2026-12-01T10:05:00Z',
    },
    true,
  ),
  node('worker-3', {
    [Annotation.status]: 'rolled-back',
    [Annotation.currentVersion]: '3.27.0',
    [Annotation.runId]: 'run-6',
    [Annotation.lastError]: 'verification pod exited 1',
  }),
  node('worker-4', {}),
]

describe('status -o', () => {
  let fleet: ApiServer
  let dir: string
  let env: Record<string, string>
  beforeAll(async () => {
    fleet = await apiServer((method, url) =>
      method === 'GET' && url.startsWith('/api/v1/nodes')
        ? {
            status: 200,
            body: { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: FLEET },
          }
        : undefined,
    )
    dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-status-o-'))
    await writeFile(path.join(dir, 'helm'), FAKE_HELM, { mode: 0o755 })
    env = { HELM_BIN: path.join(dir, 'helm') }
  })
  afterAll(async () => {
    await fleet.close()
    await rm(dir, { recursive: true, force: true })
  })
  const status = (argv: string[]) => runCli(Status, ['--kubeconfig', fleet.kubeconfig, '--no-policy', ...argv], env)

  it('-o json: the versioned report, with the count of nodes in each state (0 included), the same object as --json', async () => {
    const r = await status(['-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as Record<string, unknown>
    expect(report).toMatchObject({
      apiVersion: 'kata-lcm.katacontainers.io/v1alpha1',
      kind: 'Status',
      release: { name: 'kata-deploy', namespace: 'kube-system', chartVersion: '3.28.0', status: 'deployed' },
      selection: 'all nodes',
      counts: { completed: 1, verifying: 1, 'rolled-back': 1, untouched: 1, failed: 0, cordoned: 0 },
    })
    expect(Object.keys(report.counts as object)).toEqual([
      'preparing',
      'cordoned',
      'draining',
      'upgrading',
      'verifying',
      'completed',
      'rolling-back',
      'rolled-back',
      'failed',
      'untouched',
    ])
    expect((report.rows as { node: string }[]).map((row) => row.node)).toEqual([
      'worker-1',
      'worker-2',
      'worker-3',
      'worker-4',
    ])
    const json = await status(['--json'])
    expect(JSON.parse(json.stdout)).toEqual(report)
  })

  it('-o yaml parses, with any YAML parser (1.1 or 1.2), to the object -o json prints', async () => {
    const [yaml, json] = [await status(['-o', 'yaml']), await status(['-o', 'json'])]
    expect(yaml.code, yaml.stderr).toBe(0)
    expect(yaml.stdout).toMatch(/^apiVersion: kata-lcm\.katacontainers\.io\/v1alpha1\nkind: Status\n/)
    expect(YAML.parse(yaml.stdout)).toEqual(JSON.parse(json.stdout))
    // A YAML 1.1 parser (PyYAML, Go's yaml.v2) would read an unquoted timestamp or `no` as no string.
    expect(YAML.parse(yaml.stdout, { version: '1.1' })).toEqual(JSON.parse(json.stdout))
  })

  it('the table counts the nodes in each state; -o wide adds the run, the previous version and the phase start', async () => {
    const plain = await status([])
    expect(plain.code, plain.stderr).toBe(0)
    expect(plain.stdout).toContain('nodes: 1 verifying, 1 completed, 1 rolled-back, 1 untouched')
    expect(plain.stdout).toMatch(/^NODE +STATUS +VERSION +CORDONED +KATA-DEPLOY POD +LAST ERROR$/m)
    expect(plain.stdout).not.toContain('run-7')
    const wide = await status(['-o', 'wide'])
    expect(wide.code, wide.stderr).toBe(0)
    expect(wide.stdout).toMatch(
      /^NODE +STATUS +VERSION +PREVIOUS +CORDONED +KATA-DEPLOY POD +RUN +PHASE STARTED +LAST ERROR$/m,
    )
    expect(wide.stdout).toMatch(
      /^worker-2 +verifying +- +3\.27\.0 +yes \(kata-lcm\) +n\/a +run-7 +2026-12-01T10:05:00Z$/m,
    )
    expect(wide.stdout).toMatch(/^worker-3 +rolled-back +3\.27\.0 +- +no +n\/a +run-6 +- +verification pod exited 1$/m)
  })

  it('refuses an unknown format, and -o with --json, before asking the cluster anything (exit 2)', async () => {
    const before = fleet.requests.length
    const bad = await status(['-o', 'name'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/Expected --output=name to be one of: json, yaml, wide/)
    const both = await status(['-o', 'yaml', '--json'])
    expect(both.code).toBe(2)
    expect(both.stdout + both.stderr).toMatch(
      /--json.*cannot also be provided when using --output|--output.*cannot also be provided when using --json/,
    )
    expect(fleet.requests.length).toBe(before)
  })

  it('--watch takes neither -o nor --json (a line per change is its output), refused before any request', async () => {
    const before = fleet.requests.length
    for (const argv of [
      ['-w', '-o', 'json'],
      ['--watch', '--json'],
    ]) {
      const r = await status(argv)
      expect(r.code).toBe(2)
      expect(r.stdout + r.stderr).toMatch(/cannot also be provided when using --watch/)
    }
    expect(fleet.requests.length).toBe(before)
  })
})
