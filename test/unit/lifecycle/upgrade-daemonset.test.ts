import { describe, expect, it } from 'vitest'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { VERIFICATION_LABEL } from '../../../src/lifecycle/engine/verification.js'
import { scenario, statusWrites, VERIFY_NAMESPACE, type Scenario } from '../../fakes/scenario.js'

const PATH = ['cordoned', 'upgrading', 'verifying', 'completed']

function expectCompleted(s: Scenario, node: string) {
  const n = s.cluster.node(node)
  expect(n.annotations).toMatchObject({
    [STATUS_ANNOTATION]: 'completed',
    [Annotation.currentVersion]: s.target,
    [Annotation.previousVersion]: s.version,
  })
  expect(n.annotations).not.toHaveProperty(Annotation.cordonedByUs)
  expect(n.annotations).not.toHaveProperty(Annotation.lastError)
  // what the node really runs, not only what it says
  expect(s.cluster.versionOn(node)).toBe(s.target)
  expect(s.cluster.kataDeployPodOn(node)?.labels['controller-revision-hash']).toBe(s.cluster.revisionHashOf(s.target))
}

describe('upgrade, daemonset mode: the happy path', () => {
  it('one node: cordon, one OnDelete helm upgrade, pod restart, verify, uncordon, finalize', async () => {
    const s = await scenario({ nodes: 1, userValues: { debug: true, image: { tag: 'pinned' } } })
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')

    expect(report).toMatchObject({
      outcome: 'success',
      mode: 'daemonset',
      fromVersion: '3.28.0',
      targetVersion: '3.29.0',
      mixedFleet: false,
      waves: [['node-1']],
    })
    expect(report.nodes).toEqual([{ name: 'node-1', status: 'completed', version: '3.29.0' }])
    expectCompleted(s, 'node-1')
    expect(s.cluster.node('node-1').unschedulable).toBe(false)
    expect(statusWrites(s.cluster, 'node-1').map((w) => w.status)).toEqual(PATH)
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'cordoned')?.unschedulable).toBe(true)

    const [roll, finalize, ...more] = s.helm.upgrades
    expect(more).toEqual([])
    expect(roll).toMatchObject({
      release: 'kata-deploy',
      namespace: 'kube-system',
      version: '3.29.0',
      noHooks: false,
      timeout: '10m',
    })
    expect(roll!.values).toEqual({
      debug: true,
      image: { tag: 'pinned' },
      updateStrategy: { type: 'OnDelete' },
      verification: { pod: '' },
    })
    // finalize: the operator's own values back, without hooks
    expect(finalize).toMatchObject({
      version: '3.29.0',
      noHooks: true,
      values: { debug: true, image: { tag: 'pinned' } },
    })
    expect(report.helmCommands).toHaveLength(2)
    expect(report.helmCommands[1]).toMatch(/--no-hooks/)

    const release = await s.helm.release('kata-deploy', 'kube-system')
    expect(release).toMatchObject({ status: 'deployed', chartVersion: '3.29.0', revision: 3 })
    expect((await s.cluster.getDaemonSet('kube-system', 'kata-deploy'))?.updateStrategy).toBe('RollingUpdate')
    // run record cleared, lock released, verification pod cleaned up
    expect(s.cluster.runs.size).toBe(0)
    expect(s.cluster.leases.size).toBe(0)
    expect(await s.cluster.listPods({ namespace: VERIFY_NAMESPACE })).toEqual([])
  })

  it('three nodes, batch size 1: strictly one node after another, one rolling helm upgrade', async () => {
    const s = await scenario({ nodes: 3 })
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')

    expect(report.outcome).toBe('success')
    expect(report.waves).toEqual([['node-1'], ['node-2'], ['node-3']])
    expect(s.events.ofType('wave-start').map((e) => e.nodes)).toEqual([['node-1'], ['node-2'], ['node-3']])
    for (const node of s.nodeNames) {
      expectCompleted(s, node)
      expect(s.cluster.node(node).unschedulable).toBe(false)
    }
    // node-2 is not touched before node-1 is completed, node-3 not before node-2
    const first = (node: string) => s.cluster.writesTo(node)[0]!.seq
    const completed = (node: string) => statusWrites(s.cluster, node).find((w) => w.status === 'completed')!.seq
    expect(first('node-2')).toBeGreaterThan(completed('node-1'))
    expect(first('node-3')).toBeGreaterThan(completed('node-2'))

    expect(s.helm.upgradesWith(false)).toHaveLength(1)
    expect(s.helm.upgradesWith(true)).toHaveLength(1)
    expect(s.helm.upgrades.at(-1)!.values).toEqual({})
  })

  it('each node gets its own verification pod, pinned to it and labelled, deleted afterwards', async () => {
    const s = await scenario({ nodes: 2 })
    await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    const created = s.cluster.writes.filter((w) => w.verb === 'create' && w.resource === 'pods')
    expect(created.map((w) => [w.node, w.namespace])).toEqual([
      ['node-1', VERIFY_NAMESPACE],
      ['node-2', VERIFY_NAMESPACE],
    ])
    for (const w of created) {
      const manifest = w.detail as {
        metadata: { name: string; labels: Record<string, string> }
        spec: { nodeSelector: Record<string, string> }
      }
      expect(manifest.metadata.name).toMatch(new RegExp(`^kata-verify-${w.node}-r\\d+$`))
      expect(manifest.metadata.labels[VERIFICATION_LABEL]).toBe(w.node)
      expect(manifest.spec.nodeSelector).toEqual({ 'kubernetes.io/hostname': w.node })
      expect(
        s.cluster.writes.some((d) => d.verb === 'delete' && d.name === manifest.metadata.name && d.seq > w.seq),
      ).toBe(true)
    }
  })

  it('the kata-deploy pods are restarted only for the wave, and the old pod never counts as the replacement', async () => {
    const s = await scenario({ nodes: 3, timings: { terminationMs: 30_000 } })
    const before = Object.fromEntries(s.nodeNames.map((n) => [n, s.cluster.kataDeployPodOn(n)!.uid]))
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kubernetes.io/hostname in (node-1,node-2)' }, batchSize: 2 }),
      'run-1',
    )
    expect(report.outcome).toBe('success')
    expect(s.cluster.kataDeployPodOn('node-1')!.uid).not.toBe(before['node-1'])
    expect(s.cluster.kataDeployPodOn('node-3')!.uid).toBe(before['node-3'])
    expect(s.cluster.writesTo('node-3')).toEqual([])
    // with a 30s termination the replacement exists only after the old pod is gone: the wait saw it through
    const upgrading = statusWrites(s.cluster, 'node-1').find((w) => w.status === 'upgrading')!
    const verifying = statusWrites(s.cluster, 'node-1').find((w) => w.status === 'verifying')!
    expect(verifying.at - upgrading.at).toBeGreaterThanOrEqual(30_000)
  })

  it('finalize keeps OnDelete while a node outside the selection still runs the old revision', async () => {
    const s = await scenario({ nodes: 3 })
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kubernetes.io/hostname!=node-3' } }),
      'run-1',
    )
    expect(report.outcome).toBe('success')
    expect(s.helm.upgradesWith(true)).toEqual([])
    expect((await s.cluster.getDaemonSet('kube-system', 'kata-deploy'))?.updateStrategy).toBe('OnDelete')
    expect(s.cluster.versionOn('node-3')).toBe('3.28.0')
    expect(s.events.ofType('info').some((e) => /keeps updateStrategy OnDelete/.test(e.message))).toBe(true)
  })

  it('a later run for the nodes left out keeps the original rollback target and values, then restores them', async () => {
    const s = await scenario({ nodes: 3, userValues: { debug: true } })
    const first = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kubernetes.io/hostname!=node-3' } }),
      'run-1',
    )
    expect(first.outcome).toBe('success')
    // not every pod is on the target yet: the record (original values, rollback target) stays
    expect(s.cluster.runs.size).toBe(1)
    s.cluster.verification.set('node-3', 'fail')
    const second = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kubernetes.io/hostname=node-3' } }),
      'run-2',
    )
    expect(second.outcome).toBe('rolled-back')
    // node-3 went back to what it really ran, not to the release's (already new) version
    expect(s.cluster.node('node-3').annotations[Annotation.currentVersion]).toBe(s.version)
    expect(s.cluster.versionOn('node-3')).toBe(s.version)
    s.cluster.verification.delete('node-3')
    const third = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kubernetes.io/hostname=node-3' } }),
      'run-3',
    )
    expect(third.outcome).toBe('success')
    expect(s.helm.upgrades.at(-1)).toMatchObject({ noHooks: true, values: { debug: true } })
    expect(s.cluster.runs.size).toBe(0)
  })

  it('a node an operator cordoned stays cordoned, and is still upgraded and verified', async () => {
    const s = await scenario({ nodes: [{ name: 'node-1' }, { name: 'node-2', unschedulable: true }] })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('success')
    expectCompleted(s, 'node-2')
    expect(s.cluster.node('node-2').unschedulable).toBe(true)
    expect(s.cluster.node('node-2').annotations[Annotation.wasUnschedulable]).toBe('true')
    expect(statusWrites(s.cluster, 'node-2').some((w) => w.unschedulable === false)).toBe(false)
    expect(
      s.cluster.nodeEvents.find((e) => e.node === 'node-2' && e.reason === 'KataUpgradeCordoned')?.message,
    ).toMatch(/already unschedulable/)
    expect(s.cluster.node('node-1').unschedulable).toBe(false)
  })

  it('emits phases in order for each wave (verify completes the nodes that pass: complete has none left)', async () => {
    const s = await scenario({ nodes: 2 })
    await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(s.events.ofType('phase-start').map((e) => e.phase)).toEqual(['prepare', 'upgrade', 'verify'])
    expect(s.events.ofType('phase-end').every((e) => e.failures.length === 0)).toBe(true)
    expect(s.events.ofType('wave-end')).toEqual([
      { type: 'wave-end', wave: 1, passed: ['node-1', 'node-2'], rolledBack: [], failed: [] },
    ])
  })

  it('a run into 4.1.0 says, in its plan, that the RuntimeClasses change for every node at the first wave', async () => {
    const s = await scenario({ nodes: 2, version: '4.0.0', target: '4.1.0', chartVersions: ['4.0.0', '4.1.0'] })
    const report = await upgrade(s.deps, s.upgradeRequest({ dryRun: true }), 'run-1')
    expect(report.nextSteps).toContainEqual(
      expect.stringMatching(
        /^at the first wave, kata-deploy 4.1.0's RuntimeClasses \(cluster-scoped\) start scheduling Kata pods only onto nodes its installer has labelled/,
      ),
    )
  })
})
