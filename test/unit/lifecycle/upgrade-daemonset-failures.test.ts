import { describe, expect, it } from 'vitest'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import type { VerificationBehaviour } from '../../fakes/kubelet-sim.js'
import { FAILED_AT_VERIFY, scenario, statusWrites, VERIFY_NAMESPACE, type Scenario } from '../../fakes/scenario.js'

function expectRolledBack(s: Scenario, node: string) {
  const n = s.cluster.node(node)
  expect(n.annotations).toMatchObject({ [STATUS_ANNOTATION]: 'rolled-back', [Annotation.currentVersion]: s.version })
  expect(n.annotations[Annotation.lastError]).toBeTruthy()
  expect(n.unschedulable).toBe(false)
  // really back: a Ready pod at the previous revision
  expect(s.cluster.versionOn(node)).toBe(s.version)
}

/** The one patch that uncordoned the node, and everything before it. */
function uncordon(s: Scenario, node: string) {
  return statusWrites(s.cluster, node).filter((w) => w.unschedulable === false)
}

describe('upgrade, daemonset mode: verification failures', () => {
  it('node 2 of 3 fails verification: node 2 rolled back, node 1 kept, node 3 never touched', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-2', { behaviour: 'fail', logTail: ['kata-runtime: failed to launch qemu'] })
    const node3 = s.cluster.kataDeployPodOn('node-3')!
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')

    expect(report.outcome).toBe('rolled-back')
    expect(report.mixedFleet).toBe(true)
    expect(report.summary).toMatch(/MIXED: 1 node\(s\) on 3.29.0, 2 on older versions/)
    const byName = Object.fromEntries(report.nodes.map((n) => [n.name, n]))
    expect(byName['node-1']).toEqual({ name: 'node-1', status: 'completed', version: '3.29.0' })
    expect(byName['node-2']).toMatchObject({
      status: 'rolled-back',
      version: '3.28.0',
      error: expect.stringMatching(/container verify exited 1/),
    })
    expect(byName['node-2']!.evidence).toMatchObject({
      phase: 'Failed',
      logTail: ['kata-runtime: failed to launch qemu'],
    })
    expect(byName['node-2']!.evidence!.events.join('\n')).toMatch(/Scheduled: Successfully assigned/)
    expect(byName['node-3']).toEqual({ name: 'node-3', status: 'untouched', version: '3.28.0' })

    expectRolledBack(s, 'node-2')
    expect(statusWrites(s.cluster, 'node-2').map((w) => w.status)).toEqual(FAILED_AT_VERIFY)
    // helm went up once and back once; no finalize after a failed run
    expect(s.helm.upgrades.map((u) => [u.version, u.noHooks])).toEqual([
      ['3.29.0', false],
      ['3.28.0', false],
    ])
    expect(s.helm.upgrades[1]!.values).toEqual({ updateStrategy: { type: 'OnDelete' }, verification: { pod: '' } })
    // node 1 keeps its verified pod (OnDelete), node 3 nothing at all
    expect(s.cluster.versionOn('node-1')).toBe('3.29.0')
    expect(s.cluster.writesTo('node-3')).toEqual([])
    expect(s.cluster.kataDeployPodOn('node-3')).toEqual(node3)
    expect(s.events.ofType('wave-start')).toHaveLength(2)
    expect(await s.cluster.listPods({ namespace: VERIFY_NAMESPACE })).toEqual([])
    expect(s.cluster.leases.size).toBe(0)
  })

  it.each<[VerificationBehaviour, RegExp]>([
    ['fail', /failed: container verify exited 1/],
    ['exit-before-phase', /failed: container verify exited 1/],
    ['crashloop', /cannot start: container verify CrashLoopBackOff/],
  ])('a %s verification pod fails the node at once, far below the timeout', async (behaviour, reason) => {
    const s = await scenario({ nodes: 1 })
    s.cluster.verification.set('node-1', behaviour)
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.nodes[0]).toMatchObject({ status: 'rolled-back', error: expect.stringMatching(reason) })
    const writes = statusWrites(s.cluster, 'node-1')
    const took = writes.find((w) => w.status === 'rolling-back')!.at - writes.find((w) => w.status === 'verifying')!.at
    expect(took).toBeLessThan(10_000) // the timeout is 120s
    expectRolledBack(s, 'node-1')
  })

  it.each<[VerificationBehaviour, string]>([
    ['pending', 'stuck Pending: container verify waiting (ContainerCreating)'],
    ['unschedulable', 'stuck Pending: Unschedulable: 0/1 nodes are available'],
    ['never-seen', 'the pod was never seen'],
  ])('a %s verification pod fails at the timeout, saying why', async (behaviour, why) => {
    const s = await scenario({ nodes: 1 })
    s.cluster.verification.set('node-1', behaviour)
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.nodes[0]!.error).toContain(`did not finish within 120s: ${why}`)
    const writes = statusWrites(s.cluster, 'node-1')
    expect(writes.find((w) => w.status === 'rolling-back')!.at - writes.find((w) => w.status === 'verifying')!.at).toBe(
      120_000,
    )
    expectRolledBack(s, 'node-1')
  })

  it('a verification pod that cannot be created fails the node', async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.injectFailure({ verb: 'create', resource: 'pods' })
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.nodes[0]!.error).toMatch(
      /could not create verification pod kata-verify-node-1-r\d+: injected failure/,
    )
    expectRolledBack(s, 'node-1')
  })
})

describe('upgrade, daemonset mode: the new kata-deploy does not come up', () => {
  it('a crash-looping version fails at wait-ready: rolled back before any uncordon, no verification', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.kataDeploy.crashLoopVersions.add('3.29.0')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')

    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes[0]!.error).toMatch(
      /kata-deploy pod kata-deploy-\w+ on node-1 is CrashLoopBackOff \(restarts: 3\)/,
    )
    expectRolledBack(s, 'node-1')
    expect(s.cluster.writes.some((w) => w.resource === 'pods' && w.verb === 'create')).toBe(false)
    // the only uncordon is the rolled-back write, after helm went back and the old pod is up again
    const [only, ...rest] = uncordon(s, 'node-1')
    expect(rest).toEqual([])
    expect(only!.status).toBe('rolled-back')
    const revert = s.cluster.writes.find(
      (w) => w.verb === 'upgrade' && (w.detail as { version: string }).version === '3.28.0',
    )!
    expect(only!.seq).toBeGreaterThan(revert.seq)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })

  it('a helm upgrade that fails on the way up: nodes rolled back, their pods never restarted', async () => {
    const s = await scenario({ nodes: 2 })
    const uid = s.cluster.kataDeployPodOn('node-1')!.uid
    s.helm.failNextUpgrade({
      message: 'UPGRADE FAILED: timed out waiting for the condition',
      when: (r) => r.version === '3.29.0',
    })
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes[0]!.error).toMatch(/timed out waiting for the condition/)
    expectRolledBack(s, 'node-1')
    expect(s.cluster.kataDeployPodOn('node-1')!.uid).toBe(uid)
    expect(await s.helm.release('kata-deploy', 'kube-system')).toMatchObject({
      status: 'deployed',
      chartVersion: '3.28.0',
    })
  })
})

describe('upgrade, daemonset mode: the rollback itself fails', () => {
  it('helm cannot go back: the node is failed, stays cordoned, outcome manual-action', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.verification.set('node-1', 'fail')
    s.helm.failNextUpgrade({ message: 'UPGRADE FAILED: another chart pull error', when: (r) => r.version === '3.28.0' })
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')

    expect(report.outcome).toBe('manual-action')
    expect(report.nodes[0]).toMatchObject({
      name: 'node-1',
      status: 'failed',
      error: expect.stringMatching(/exited 1.*; rollback failed: .*another chart pull error/),
    })
    const n = s.cluster.node('node-1')
    expect(n.annotations[STATUS_ANNOTATION]).toBe('failed')
    expect(n.annotations[Annotation.lastError]).toMatch(/rollback failed/)
    expect(n.unschedulable).toBe(true)
    expect(uncordon(s, 'node-1')).toEqual([])
    expect(report.nextSteps.join('\n')).toMatch(/kata-lcm rollback node-1/)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })
})

describe('upgrade, daemonset mode: waves', () => {
  it('batch 2 over 5 nodes, node-4 fails in wave 2: node-3 completed, node-4 rolled back, wave 3 untouched', async () => {
    const s = await scenario({ nodes: 5 })
    s.cluster.verification.set('node-4', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')

    expect(report.waves).toEqual([['node-1', 'node-2'], ['node-3', 'node-4'], ['node-5']])
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.map((n) => [n.name, n.status])).toEqual([
      ['node-1', 'completed'],
      ['node-2', 'completed'],
      ['node-3', 'completed'],
      ['node-4', 'rolled-back'],
      ['node-5', 'untouched'],
    ])
    for (const node of ['node-1', 'node-2', 'node-3']) expect(s.cluster.versionOn(node)).toBe('3.29.0')
    expectRolledBack(s, 'node-4')
    expect(s.cluster.node('node-3').unschedulable).toBe(false)
    expect(s.cluster.writesTo('node-5')).toEqual([])
    expect(s.events.ofType('wave-end').at(-1)).toEqual({
      type: 'wave-end',
      wave: 2,
      passed: ['node-3'],
      rolledBack: ['node-4'],
      failed: [],
    })
  })

  it('both nodes of a wave fail: both rolled back with one helm revert', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.verification.set('node-1', 'fail')
    s.cluster.verification.set('node-2', 'crashloop')
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(report.mixedFleet).toBe(false)
    for (const node of s.nodeNames) expectRolledBack(s, node)
    // One revert for both, then (every node back on 3.28.0) the operator's own values back, hooks off.
    expect(s.helm.upgrades.map((u) => [u.version, u.noHooks ?? false])).toEqual([
      ['3.29.0', false],
      ['3.28.0', false],
      ['3.28.0', true],
    ])
    expect(s.helm.upgrades.at(-1)!.values).toEqual({})
    expect(s.cluster.runs.size).toBe(0)
  })

  it("a wave that fails after an earlier wave completed keeps the operator's values in the record, not in the release", async () => {
    const s = await scenario({ nodes: 2, userValues: { env: { debug: 'true' } } })
    s.cluster.verification.set('node-2', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    // node-1 is on 3.29.0, node-2 back on 3.28.0: not converged, so no restore yet.
    expect(s.helm.upgrades.every((u) => !u.noHooks)).toBe(true)
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.userValues).toEqual({ env: { debug: 'true' } })
  })
})
