import { describe, expect, it } from 'vitest'
import { LockedError } from '../../../src/lifecycle/errors.js'
import { LOCK_TTL_SECONDS } from '../../../src/lifecycle/run/lock.js'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { scenario, statusWrite, statusWrites, VERIFY_NAMESPACE, type Scenario } from '../../fakes/scenario.js'

/** Runs an upgrade in its own process, killed right after `node` is written `status`; returns once it is dead. */
async function crashedRun(
  s: Scenario,
  node: string,
  status: Parameters<typeof statusWrite>[1],
  batchSize = 1,
): Promise<void> {
  const process = s.spawn()
  const crashed = s.cluster.afterWrite(statusWrite(node, status), () => process.kill())
  void upgrade(process.deps, s.upgradeRequest({ batchSize }), 'run-1')
  await crashed
}

/** Lets the dead run's lease expire. */
const afterLeaseExpiry = (s: Scenario) => s.clock.sleep((LOCK_TTL_SECONDS + 1) * 1000)

describe('dry run', () => {
  it('daemonset: writes nothing and shows the waves and the one helm command', async () => {
    const s = await scenario({ nodes: 3 })
    const report = await upgrade(s.deps, s.upgradeRequest({ dryRun: true, batchSize: 2 }), 'run-1')
    expect(report).toMatchObject({
      outcome: 'planned',
      dryRun: true,
      mixedFleet: false,
      waves: [['node-1', 'node-2'], ['node-3']],
    })
    expect(report.helmCommands).toEqual([
      'helm upgrade kata-deploy oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy -n kube-system --version 3.29.0 --reset-values -f <values-file> --timeout 10m',
    ])
    expect(report.nodes.map((n) => n.status)).toEqual(['untouched', 'untouched', 'untouched'])
    expect(s.cluster.writes).toEqual([])
    expect(s.helm.upgrades).toEqual([])
  })

  it('job: one scoped helm command per wave', async () => {
    const s = await scenario({ mode: 'job', nodes: 3 })
    const report = await upgrade(s.deps, s.upgradeRequest({ dryRun: true, batchSize: 2 }), 'run-1')
    expect(report.helmCommands).toHaveLength(2)
    expect(s.cluster.writes).toEqual([])
  })
})

describe('rerun', () => {
  it('after success: nothing to do, nothing written', async () => {
    const s = await scenario({ nodes: 2 })
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('success')
    const writes = s.cluster.writes.length
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.outcome).toBe('nothing-to-do')
    expect(report.nodes).toEqual([
      { name: 'node-1', status: 'skipped', version: '3.29.0' },
      { name: 'node-2', status: 'skipped', version: '3.29.0' },
    ])
    expect(s.cluster.writes).toHaveLength(writes)
  })

  it('after a rolled-back run, with the cause fixed: the rolled-back node is upgraded, completed ones skipped', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-2', 'fail')
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('rolled-back')
    s.cluster.verification.delete('node-2')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.outcome).toBe('success')
    expect(report.waves).toEqual([['node-2'], ['node-3']])
    for (const node of s.nodeNames) expect(s.cluster.versionOn(node)).toBe('3.29.0')
    expect(s.cluster.node('node-2').annotations[Annotation.previousVersion]).toBe('3.28.0')
  })
})

describe('resume after a crash', () => {
  it('a node left verifying is redone first, the completed one skipped, helm not rolled again', async () => {
    const s = await scenario({ nodes: 3 })
    await crashedRun(s, 'node-2', 'verifying')
    expect(s.status('node-1')).toBe('completed')
    expect(s.status('node-2')).toBe('verifying')
    expect(s.status('node-3')).toBeUndefined()
    await afterLeaseExpiry(s)

    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.outcome).toBe('success')
    expect(report.waves).toEqual([['node-2'], ['node-3']])
    expect(report.fromVersion).toBe('3.28.0')
    expect(report.nodes.find((n) => n.name === 'node-1')).toMatchObject({ status: 'skipped' })
    expect(
      s.events
        .ofType('info')
        .map((e) => e.message)
        .join('\n'),
    ).toMatch(/resuming 1 node\(s\).*node-2/)
    // one rolling helm upgrade in both runs together; the finalize restores the operator's (empty) values
    expect(s.helm.upgradesWith(false)).toHaveLength(1)
    expect(s.helm.upgradesWith(true).map((u) => u.values)).toEqual([{}])
    for (const node of s.nodeNames) {
      expect(s.cluster.versionOn(node)).toBe('3.29.0')
      expect(s.cluster.node(node).unschedulable).toBe(false)
      expect(s.cluster.node(node).annotations[Annotation.previousVersion]).toBe('3.28.0')
    }
    // the dead run's verification pod was cleaned up
    expect(await s.cluster.listPods({ namespace: VERIFY_NAMESPACE })).toEqual([])
    expect(s.cluster.runs.size).toBe(0)
  })

  it('a node left preparing by an earlier kata-lcm (record and cordon apart) is cordoned in one write and finished', async () => {
    const s = await scenario({ nodes: 2 })
    await crashedRun(s, 'node-1', 'cordoned')
    // What the earlier kata-lcm left when it died between its two writes: recorded, not yet cordoned.
    const left = s.cluster.node('node-1').annotations
    s.cluster.setNode('node-1', {
      unschedulable: false,
      annotations: {
        ...Object.fromEntries(Object.entries(left).filter(([k]) => k !== Annotation.cordonedByUs)),
        [STATUS_ANNOTATION]: 'preparing',
      },
    })
    await afterLeaseExpiry(s)
    const writes = statusWrites(s.cluster, 'node-1').length

    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.outcome).toBe('success')
    expect(
      statusWrites(s.cluster, 'node-1')
        .slice(writes)
        .map((w) => w.status),
    ).toEqual(['cordoned', 'upgrading', 'verifying', 'completed'])
    expect(s.cluster.node('node-1')).toMatchObject({ unschedulable: false })
    expect(s.cluster.node('node-1').annotations[Annotation.wasUnschedulable]).toBe('false')
    expect(s.cluster.versionOn('node-1')).toBe('3.29.0')
  })

  it('a resumed node whose verification now fails goes back to the version before the first run', async () => {
    const s = await scenario({ nodes: 3 })
    await crashedRun(s, 'node-2', 'verifying')
    await afterLeaseExpiry(s)
    s.cluster.verification.set('node-2', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.outcome).toBe('rolled-back')
    expect(s.helm.upgrades.at(-1)).toMatchObject({
      version: '3.28.0',
      values: { updateStrategy: { type: 'OnDelete' } },
    })
    expect(s.cluster.versionOn('node-2')).toBe('3.28.0')
    expect(s.cluster.node('node-2').annotations[Annotation.currentVersion]).toBe('3.28.0')
    expect(s.cluster.writesTo('node-3')).toEqual([])
  })

  it('a node left cordoned by an operator before the first run stays cordoned after the resume', async () => {
    const s = await scenario({ nodes: [{ name: 'node-1', unschedulable: true }] })
    await crashedRun(s, 'node-1', 'upgrading')
    await afterLeaseExpiry(s)
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-2')).outcome).toBe('success')
    expect(s.cluster.node('node-1').unschedulable).toBe(true)
    expect(s.cluster.node('node-1').annotations[Annotation.wasUnschedulable]).toBe('true')
  })

  it('a run killed mid-rollback finishes that rollback and stops', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-1', 'fail')
    await crashedRun(s, 'node-1', 'rolling-back')
    await afterLeaseExpiry(s)
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.outcome).toBe('rolled-back')
    expect(s.status('node-1')).toBe('rolled-back')
    expect(s.cluster.versionOn('node-1')).toBe('3.28.0')
    expect(s.cluster.node('node-1').unschedulable).toBe(false)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })

  it('while the dead run still holds a live lease, a new run is refused without writing to any node', async () => {
    const s = await scenario({ nodes: 2 })
    await crashedRun(s, 'node-1', 'verifying')
    const before = s.cluster.writes.length
    const error = await upgrade(s.deps, s.upgradeRequest(), 'run-2').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockedError)
    expect((error as Error).message).toMatch(/holds the lock kube-system\/kata-lcm-kata-deploy: run-1/)
    expect(s.cluster.writes.slice(before)).toEqual([])
    expect(statusWrites(s.cluster, 'node-1').at(-1)!.status).toBe('verifying')
  })

  it('refuses to start toward another target while an interrupted run is unfinished', async () => {
    const s = await scenario({ nodes: 2, chartVersions: ['3.28.0', '3.29.0', '3.30.0'] })
    await crashedRun(s, 'node-1', 'verifying')
    await afterLeaseExpiry(s)
    const before = s.cluster.writes.length
    const error = await upgrade(s.deps, s.upgradeRequest({ targetVersion: '3.30.0' }), 'run-2').then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(error?.message).toMatch(/kata-lcm run \(run-1\) moving kata-deploy from 3.28.0 to 3.29.0 has not finished/)
    expect(s.cluster.writes.slice(before)).toEqual([])
    expect(s.cluster.node('node-1').annotations[STATUS_ANNOTATION]).toBe('verifying')
  })
})
