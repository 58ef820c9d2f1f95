/**
 * The cluster is the truth: a node's annotations are history. Judgements about which nodes run what
 * come from their kata-deploy pods (or install label), and a node that left the release is not held
 * to its last annotation.
 */
import { describe, expect, it } from 'vitest'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/node-state.js'
import { upgrade } from '../../../src/lifecycle/upgrade.service.js'
import { RELEASE, scenario, statusWrite } from '../../fakes/scenario.js'

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
      `3 selected node(s) run kata-deploy ${s.target}; 1 deleted during the run, not upgraded: node-2`,
    )
    expect(report.mixedFleet).toBe(false)
    // Seen by the watch, not after the ready timeout (300 s of virtual time).
    expect(s.clock.now().getTime() - t0).toBeLessThan(300_000)
    // The next wave ran, and the operator's values are back (the deleted node holds nothing).
    expect(await s.cluster.readRun(RELEASE.namespace, RELEASE.name)).toBeUndefined()
  })
})
