/**
 * The cluster is the truth: a node's annotations are history. Judgements about which nodes run what
 * come from their kata-deploy pods (or install label), and a node that left the release is not held
 * to its last annotation.
 */
import { describe, expect, it } from 'vitest'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { rollbackNode } from '../../../src/lifecycle/services/rollback.service.js'
import { CHART, RELEASE, scenario, statusWrite, statusWrites } from '../../fakes/scenario.js'

describe('the operator values come back once every node the release covers runs one version', () => {
  it('a node rolled back earlier, then taken out of the release (its kata-deploy pod gone), does not hold them back', async () => {
    const s = await scenario({
      nodes: ['node-1', 'node-2', 'node-3'].map((name) => ({ name, labels: { kata: 'yes' } })),
      userValues: { nodeSelector: { kata: 'yes' } },
    })
    // node-3: rolled back to an older version by an earlier run, then the operator removed the label
    // the release's nodeSelector uses: the DaemonSet controller removed its pod and makes none.
    s.cluster.setNode('node-3', {
      labels: { ...s.cluster.node('node-3').labels, kata: 'no' },
      annotations: {
        ...s.cluster.node('node-3').annotations,
        [STATUS_ANNOTATION]: 'rolled-back',
        [Annotation.currentVersion]: '3.27.0',
      },
    })
    const pod = s.cluster.kataDeployPodOn('node-3')!
    await s.cluster.deletePod(pod.namespace, pod.name, 0)
    expect(s.cluster.kataDeployPodOn('node-3')).toBeUndefined()

    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kata=yes' }, batchSize: 2 }),
      'run-1',
    )
    expect(report.outcome).toBe('success')
    expect(s.events.ofType('info').map((e) => e.message)).not.toContainEqual(
      expect.stringMatching(/not every node runs/),
    )
    // The operator's values are back (no kata-lcm override left) and no run record is in flight.
    expect(s.helm.upgradesWith(true).at(-1)?.values).toEqual({ nodeSelector: { kata: 'yes' } })
    expect(await s.cluster.readRun(RELEASE.namespace, RELEASE.name)).toBeUndefined()
  })
})

describe('a node deleted while in a wave', () => {
  it('is seen gone at once, reported gone (never upgraded), the others finish; the run says so (nodes-gone)', async () => {
    const s = await scenario({ nodes: 4 })
    // An autoscaler removes node-2 as kata-lcm starts rolling kata-deploy onto it.
    void s.cluster.afterWrite(statusWrite('node-2', 'upgrading'), () => s.cluster.deleteNode('node-2'))
    const t0 = s.clock.now().getTime()
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).toBe('nodes-gone')
    expect(report.nodes.find((n) => n.name === 'node-2')).toEqual({
      name: 'node-2',
      status: 'gone',
      error: 'node-2 was deleted',
    })
    for (const name of ['node-1', 'node-3', 'node-4'])
      expect(report.nodes.find((n) => n.name === name)).toMatchObject({ status: 'completed', version: s.target })
    expect(report.summary).toBe(
      `3 selected node(s) run kata-deploy ${s.target}; 1 left during the run (deleted, or out of the release), not upgraded: node-2`,
    )
    expect(report.mixedFleet).toBe(false)
    // Seen by the watch, not after the ready timeout (300 s of virtual time).
    expect(s.clock.now().getTime() - t0).toBeLessThan(300_000)
    // The next wave ran, and the operator's values are back (the deleted node holds nothing).
    expect(await s.cluster.readRun(RELEASE.namespace, RELEASE.name)).toBeUndefined()
  })
})

describe('memory bound to the release instance it was written for', () => {
  it('a release uninstalled and installed again: the old run is not resumed, its annotations are not trusted, its values not restored', async () => {
    const s = await scenario({ nodes: 2 })
    expect((await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')).outcome).toBe('success')
    // node-1 back on the old version: the fleet is mixed, so the run record (the operator's values) is kept.
    expect((await rollbackNode(s.deps, s.rollbackRequest('node-1'), 'rb-1')).outcome).toBe('success')
    expect(await s.cluster.readRun(RELEASE.namespace, RELEASE.name)).toBeDefined()
    // The operator reinstalls the release (helm uninstall, helm install) with other values: every
    // node runs the old version again, whatever kata-lcm's annotations on node-2 say.
    const values = { env: { debug: true } }
    await s.helm.install({ ...RELEASE, version: s.version, values, chart: CHART })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-2')
    expect(report.outcome).toBe('success')
    const infos = s.events.ofType('info').map((e) => e.message)
    expect(infos).not.toContainEqual(expect.stringMatching(/resuming run|already completed/))
    expect(s.events.ofType('warning').map((e) => e.message)).toContainEqual(
      expect.stringMatching(
        /^run rb-1 \(.*\) belongs to an earlier install of release kata-deploy .*kata-lcm unlock --forget-run/,
      ),
    )
    // node-2 was upgraded by this run (not skipped on the old install's word), from the version it really ran.
    expect(report.fromVersion).toBe(s.version)
    expect(report.nodes.find((n) => n.name === 'node-2')).toMatchObject({ status: 'completed', version: s.target })
    expect(statusWrites(s.cluster, 'node-2').map((w) => w.status)).toContain('cordoned')
    // The values that come back are the new install's, not the old record's.
    expect(s.helm.upgradesWith(true).at(-1)?.values).toEqual(values)
    expect(s.cluster.node('node-2').annotations[Annotation.releaseInstance]).toBe(
      await s.helm.firstDeployed(RELEASE.name, RELEASE.namespace),
    )
  })
})

describe('a node that leaves the release while in a wave', () => {
  it("is seen at once, handed back as the operator left it (uncordoned, kata-lcm's status off), reported gone", async () => {
    const s = await scenario({
      nodes: ['node-1', 'node-2', 'node-3'].map((name) => ({ name, labels: { kata: 'yes' } })),
      userValues: { nodeSelector: { kata: 'yes' } },
    })
    // The operator takes node-2 out of the pool as kata-lcm starts rolling kata-deploy onto it.
    void s.cluster.afterWrite(statusWrite('node-2', 'upgrading'), () =>
      s.cluster.setNode('node-2', { labels: { ...s.cluster.node('node-2').labels, kata: 'no' } }),
    )
    const t0 = s.clock.now().getTime()
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ selection: { labelSelector: 'kata=yes' }, batchSize: 3 }),
      'run-1',
    )
    expect(report.outcome).toBe('nodes-gone')
    expect(report.nodes.find((n) => n.name === 'node-2')).toEqual({
      name: 'node-2',
      status: 'gone',
      error: "node-2 left the release: it no longer carries its nodeSelector's kata=yes",
    })
    expect(s.clock.now().getTime() - t0).toBeLessThan(300_000)
    const node = s.cluster.node('node-2')
    expect(node.unschedulable).toBe(false)
    expect(node.annotations[STATUS_ANNOTATION]).toBeUndefined()
    expect(node.annotations[Annotation.lastError]).toMatch(/left the release/)
    for (const name of ['node-1', 'node-3']) expect(s.status(name)).toBe('completed')
  })
})
