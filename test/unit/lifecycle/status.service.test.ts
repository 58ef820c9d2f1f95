import { describe, expect, it } from 'vitest'
import { rollbackNode } from '../../../src/lifecycle/services/rollback.service.js'
import { formatStatus } from '../../../src/ui/report-format.js'
import { PreconditionError } from '../../../src/lifecycle/errors.js'
import { Annotation } from '../../../src/lifecycle/engine/node-state.js'
import { nodeStatus } from '../../../src/lifecycle/services/status.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { RELEASE, scenario, statusWrite } from '../../fakes/scenario.js'

const runtime = { 'katacontainers.io/kata-runtime': 'true' }

describe('status', () => {
  it('one row per node: status, version, who cordoned it, and whether its kata-deploy pod is current', async () => {
    const s = await scenario({
      nodes: [
        { name: 'node-a', labels: runtime },
        { name: 'node-b', labels: runtime },
        { name: 'node-c', labels: runtime, unschedulable: true },
        { name: 'node-d' },
      ],
      userValues: { nodeSelector: runtime },
    })
    s.cluster.verification.set('node-b', 'pending')
    // node-a completes; node-b is caught mid-verification (kata-lcm's cordon); node-c an operator cordoned
    const process = s.spawn()
    const midway = s.cluster.afterWrite(statusWrite('node-b', 'verifying'), () => process.kill())
    void upgrade(
      process.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kubernetes.io/hostname in (node-a,node-b)' } }),
      'run-1',
    )
    await midway
    const before = s.cluster.writes.length

    const report = await nodeStatus(s.deps, RELEASE, {})
    expect(report.release).toEqual({ ...RELEASE, chartVersion: '3.29.0', status: 'deployed' })
    expect(report.selection).toBe('all nodes')
    expect(report).toMatchObject({ apiVersion: 'kata-lcm.katacontainers.io/v1alpha1', kind: 'Status' })
    expect(report.counts).toMatchObject({ completed: 1, verifying: 1, untouched: 2, failed: 0 })
    const rows = Object.fromEntries(report.rows.map((r) => [r.node, r]))
    expect(rows['node-a']).toMatchObject({
      status: 'completed',
      version: '3.29.0',
      cordoned: false,
      kataDeployPod: 'current',
      runId: 'run-1',
      previousVersion: '3.28.0',
    })
    expect(rows['node-a']).not.toHaveProperty('cordonedBy')
    expect(rows['node-b']).toMatchObject({
      status: 'verifying',
      version: '-',
      cordoned: true,
      cordonedBy: 'kata-lcm',
      kataDeployPod: 'current',
    })
    expect(rows['node-b']!.phaseStartedAt).toMatch(/^2025-06-01T/)
    expect(rows['node-c']).toMatchObject({
      status: '-',
      version: '-',
      cordoned: true,
      cordonedBy: 'operator',
      kataDeployPod: 'outdated',
    })
    expect(rows['node-d']).toMatchObject({ kataDeployPod: 'missing', cordoned: false })
    expect(report.rows.map((r) => r.node)).toEqual(['node-a', 'node-b', 'node-c', 'node-d'])
    expect(s.cluster.writes).toHaveLength(before)
  })

  it('shows the last error of a rolled-back node', async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.verification.set('node-1', 'fail')
    await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    const [row] = (await nodeStatus(s.deps, RELEASE, {})).rows
    expect(row).toMatchObject({ status: 'rolled-back', version: '3.28.0', cordoned: false, kataDeployPod: 'current' })
    expect(row!.lastError).toMatch(/exited 1/)
    expect(s.cluster.node('node-1').annotations[Annotation.lastError]).toBe(row!.lastError)
  })

  it("after rollback NODE: says which version each node's pod runs and how it relates to the release", async () => {
    const s = await scenario({ nodes: 2 })
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('success')
    await rollbackNode(s.deps, s.rollbackRequest('node-1'), 'rb-1')
    const rows = Object.fromEntries((await nodeStatus(s.deps, RELEASE, {})).rows.map((r) => [r.node, r]))
    expect(rows['node-1']).toMatchObject({
      podVersion: '3.28.0',
      podRelation: 'same as the release',
      kataDeployPod: 'current',
    })
    expect(rows['node-2']).toMatchObject({
      podVersion: '3.29.0',
      podRelation: 'newer than the release',
      kataDeployPod: 'outdated',
    })
    const table = formatStatus(await nodeStatus(s.deps, RELEASE, {})).join('\n')
    expect(table).toMatch(
      /node-2 +completed +3\.29\.0 +no +3\.29\.0 \(not the DaemonSet's revision, newer than the release\)/,
    )
  })

  it('job mode: no DaemonSet, pods n/a', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    const report = await nodeStatus(s.deps, RELEASE, { labelSelector: 'kubernetes.io/hostname=node-2' })
    expect(report.rows).toEqual([{ node: 'node-2', status: '-', version: '-', cordoned: false, kataDeployPod: 'n/a' }])
    expect(report.release.chartVersion).toBe('3.32.0')
  })

  it("helm's storage unreadable (another driver, no right to list Secrets): the release comes from helm", async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.helmStoredRelease = () => Promise.reject(new Error('secrets is forbidden'))
    const report = await nodeStatus(s.deps, RELEASE, {})
    expect(report.release).toMatchObject({ chartVersion: '3.28.0', status: 'deployed' })
    expect(report.release.helmProblem).toBeUndefined()
    expect(report.rows.map((r) => r.kataDeployPod)).toEqual(['current'])
  })

  it('a missing release still lists the nodes', async () => {
    const s = await scenario({ nodes: 1 })
    const report = await nodeStatus(s.deps, { name: 'other', namespace: 'kata' }, {})
    expect(report.release).toEqual({ name: 'other', namespace: 'kata' })
    expect(report.rows).toEqual([{ node: 'node-1', status: '-', version: '-', cordoned: false, kataDeployPod: 'n/a' }])
  })

  it('refuses a selection that matches nothing, and a taint value without key', async () => {
    const s = await scenario({ nodes: 1 })
    await expect(nodeStatus(s.deps, RELEASE, { taintKey: 'maint' })).rejects.toBeInstanceOf(PreconditionError)
    await expect(nodeStatus(s.deps, RELEASE, { taintValue: 'x' })).rejects.toMatchObject({
      field: '--node-taint-value',
    })
    expect(s.cluster.writes).toEqual([])
  })
})
