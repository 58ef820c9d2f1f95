import { describe, expect, it } from 'vitest'
import { ExitCode, WorkloadsDisruptedError } from '../../../src/lifecycle/errors.js'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { planStep, waveStep } from '../../../src/lifecycle/services/steps.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import {
  decodeWorkloads,
  disruptions,
  encodeWorkloads,
  isKataRuntimeClass,
  recordWorkloads,
} from '../../../src/lifecycle/engine/workloads.js'
import type { PodView } from '../../../src/ports/cluster.port.js'
import { RELEASE, scenario, type Scenario } from '../../fakes/scenario.js'

function pod(name: string, over: Partial<PodView> = {}, restarts = 0, startedAt = '2026-12-05T01:00:00Z'): PodView {
  return {
    name,
    namespace: 'apps',
    uid: `uid-${name}`,
    nodeName: 'node-1',
    phase: 'Running',
    labels: {},
    annotations: {},
    runtimeClassName: 'kata-qemu',
    ready: true,
    containers: [{ name: 'app', ready: true, restartCount: restarts, state: 'running', startedAt }],
    conditions: [],
    ownerKinds: ['ReplicaSet'],
    mirror: false,
    emptyDirs: [],
    ...over,
  }
}

const KATA = new Set(['kata-qemu'])

describe('Kata workloads: what is recorded and what counts as disrupted', () => {
  it("takes a RuntimeClass whose handler or name starts kata- as Kata's", () => {
    expect(isKataRuntimeClass({ name: 'kata-qemu', handler: 'kata-qemu' })).toBe(true)
    expect(isKataRuntimeClass({ name: 'sandboxed', handler: 'kata-clh' })).toBe(true)
    expect(isKataRuntimeClass({ name: 'gvisor', handler: 'runsc' })).toBe(false)
  })

  it('records the running Kata pods only: not runc pods, not pending or terminating ones', () => {
    const record = recordWorkloads(
      [
        pod('a'),
        pod('runc', { runtimeClassName: undefined }),
        pod('gvisor', { runtimeClassName: 'gvisor' }),
        pod('pending', { phase: 'Pending' }),
        pod('leaving', { deletionTimestamp: '2026-12-05T01:00:00Z' }),
      ],
      KATA,
    )
    expect(record).toEqual({ 'apps/a': { uid: 'uid-a', containers: { app: [0, '2026-12-05T01:00:00Z'] } } })
    expect(decodeWorkloads(encodeWorkloads(record))).toEqual(record)
    expect(decodeWorkloads('not json')).toBeUndefined()
    expect(decodeWorkloads(undefined)).toBeUndefined()
  })

  it('names a pod that restarted, started again, died, vanished or was replaced; one that ran on or completed came through', () => {
    const before = recordWorkloads(
      ['same', 'restarted', 'started-again', 'died', 'vanished', 'replaced', 'completed'].map((n) => pod(n)),
      KATA,
    )
    const now = [
      pod('same'),
      pod('restarted', {}, 1),
      pod('started-again', {}, 0, '2026-12-05T02:00:00Z'),
      pod('died', { phase: 'Failed' }),
      pod('replaced', { uid: 'another' }),
      pod('completed', { phase: 'Succeeded' }),
    ]
    expect(disruptions(before, now)).toEqual([
      { pod: 'apps/died', what: 'died' },
      { pod: 'apps/replaced', what: 'vanished' },
      { pod: 'apps/restarted', what: 'restarted' },
      { pod: 'apps/started-again', what: 'restarted' },
      { pod: 'apps/vanished', what: 'vanished' },
    ])
  })
})

/** Two nodes, one per wave; on node-1 a Kata pod that restarts with its kata-deploy pod, and a runc pod that does too. */
async function hazard(): Promise<Scenario> {
  const s = await scenario({ nodes: 2 })
  s.cluster.runtimeClasses.push({ name: 'kata-qemu', handler: 'kata-qemu' })
  s.cluster.addPod({ namespace: 'apps', name: 'kata-app', node: 'node-1', runtimeClassName: 'kata-qemu' })
  s.cluster.addPod({ namespace: 'apps', name: 'runc-app', node: 'node-1' })
  s.cluster.addPod({ namespace: 'apps', name: 'kata-calm', node: 'node-2', runtimeClassName: 'kata-qemu' })
  s.cluster.restartsWithKataDeploy('apps', 'kata-app')
  s.cluster.restartsWithKataDeploy('apps', 'runc-app')
  return s
}

describe('Kata workloads through an upgrade', () => {
  it('names a Kata pod that restarted on its node, in an Event and in the report; the run goes on (report)', async () => {
    const s = await hazard()
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1')
    expect(report.outcome).toBe('success')
    const [one, two] = ['node-1', 'node-2'].map((n) => s.cluster.node(n))
    expect(one!.annotations).toMatchObject({
      [STATUS_ANNOTATION]: 'completed',
      [Annotation.disruptedWorkloads]: 'apps/kata-app restarted',
    })
    // The record is compared, then removed; the calm node has nothing to say.
    expect(one!.annotations).not.toHaveProperty(Annotation.kataWorkloads)
    expect(two!.annotations).not.toHaveProperty(Annotation.disruptedWorkloads)
    expect(report.nodes.find((n) => n.name === 'node-1')?.disruptedWorkloads).toEqual(['apps/kata-app restarted'])
    expect(s.cluster.nodeEvents.filter((e) => e.reason === 'KataWorkloadsDisrupted')).toEqual([
      expect.objectContaining({
        node: 'node-1',
        type: 'Warning',
        message: expect.stringContaining('apps/kata-app restarted'),
      }),
    ])
    // The record was written with `upgrading`, before the kata-deploy pod went.
    const upgrading = s.cluster.writes.find(
      (w) =>
        w.resource === 'nodes' &&
        w.name === 'node-1' &&
        (w.detail as { annotations?: Record<string, string> }).annotations?.[STATUS_ANNOTATION] === 'upgrading',
    )
    const recorded = (upgrading?.detail as { annotations: Record<string, string> }).annotations[
      Annotation.kataWorkloads
    ]
    expect(Object.keys(decodeWorkloads(recorded)!)).toEqual(['apps/kata-app'])
  })

  it('with stop, the run stops before the next wave: the disrupted node is upgraded, the next untouched', async () => {
    const s = await hazard()
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1, onWorkloadDisruption: 'stop' }), 'run-1')
    expect(report.outcome).toBe('workloads-disrupted')
    expect(report.summary).toMatch(/did not come through the upgrade of node-1/)
    expect(s.status('node-1')).toBe('completed')
    expect(s.status('node-2')).toBeUndefined()
    expect(report.nodes.find((n) => n.name === 'node-2')?.status).toBe('untouched')
  })

  it("--dry-run says how many running Kata pods wave 1's nodes have now, and what a disruption would do", async () => {
    const s = await hazard()
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ batchSize: 1, dryRun: true, onWorkloadDisruption: 'stop' }),
      'run-1',
    )
    expect(report.nextSteps).toContain(
      "Kata workloads: 1 running Kata pod(s) on wave 1's nodes now; each node's are recorded before its upgrade and checked after it, and one that does not come through stops the run before the next wave",
    )
    s.cluster.runtimeClasses.length = 0
    const none = await upgrade(s.deps, s.upgradeRequest({ dryRun: true }), 'run-2')
    expect(none.nextSteps).toContain(
      'Kata workloads: the cluster has no Kata RuntimeClass, so no running Kata pod to check',
    )
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes')).toEqual([])
  })

  it("the Argo steps: the wave's rollback step fails (exit 3) and records the stop, so no later wave starts", async () => {
    const s = await hazard()
    const holder = 'wf-1'
    const request = { ...s.upgradeRequest({ batchSize: 1, onWorkloadDisruption: 'stop' as const }), release: RELEASE }
    await planStep(s.deps, request, 'run-1', holder)
    for (const step of ['prepare', 'upgrade', 'verify'] as const) await waveStep(s.deps, RELEASE, 1, step, holder)
    const stopped = await waveStep(s.deps, RELEASE, 1, 'rollback', holder).catch((e: unknown) => e)
    expect(stopped).toBeInstanceOf(WorkloadsDisruptedError)
    expect((stopped as WorkloadsDisruptedError).exitCode).toBe(ExitCode.RolledBack)
    await expect(waveStep(s.deps, RELEASE, 2, 'prepare', holder)).rejects.toThrow(/the run stopped after wave 1/)
    expect(s.status('node-2')).toBeUndefined()
  })
})
