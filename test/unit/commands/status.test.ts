/**
 * `kata-lcm status` against a small API server: when helm cannot be run it still shows the nodes,
 * says why on the release line, and exits 7 (README: helm could not be run), not 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Status from '../../../src/commands/status.js'
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
