import { describe, expect, it } from 'vitest'
import { LockedError, NodesRolledBackError, PreconditionError } from '../../../src/lifecycle/errors.js'
import { lockName } from '../../../src/lifecycle/lock.js'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/node-state.js'
import { exitStep, finalizeStep, planStep, waveStep, type WavePhase } from '../../../src/lifecycle/steps.service.js'
import { unlock } from '../../../src/lifecycle/unlock.service.js'
import { RELEASE, scenario, statusWrites, type Scenario } from '../../fakes/scenario.js'

const WF = 'workflow/kata-lcm-abc12'
const LEASE = `${RELEASE.namespace}/${lockName(RELEASE)}`
const PHASES: WavePhase[] = ['prepare', 'upgrade', 'verify', 'rollback']

/** The Argo workflow: one call per step, each as if in its own process (nothing shared but the cluster). */
async function runWaveSteps(s: Scenario, wave: number): Promise<Record<string, string>> {
  let nodes: Record<string, string> = {}
  for (const phase of PHASES) nodes = (await waveStep(s.deps, RELEASE, wave, phase, WF)).nodes
  return nodes
}

describe('Argo steps', () => {
  it('plan, then each wave phase by phase, then finalize: the same end state as the CLI', async () => {
    const s = await scenario({ nodes: 3 })
    const plan = await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    expect(plan).toEqual({ runId: 'run-1', waves: 2, nodes: 3, skipped: 0 })
    expect(s.cluster.runs.get('kube-system/kata-deploy')).toMatchObject({ runId: 'run-1', previousVersion: '3.28.0', targetVersion: '3.29.0', waves: [['node-1', 'node-2'], ['node-3']] })
    expect(s.cluster.leases.get(LEASE)?.holder).toBe(WF)
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes')).toEqual([])

    expect(await runWaveSteps(s, 1)).toEqual({ 'node-1': 'completed', 'node-2': 'completed' })
    expect(s.cluster.writesTo('node-3')).toEqual([])
    expect(await runWaveSteps(s, 2)).toEqual({ 'node-3': 'completed' })
    await finalizeStep(s.deps, RELEASE, WF)

    for (const node of s.nodeNames) {
      expect(s.cluster.versionOn(node)).toBe('3.29.0')
      expect(s.cluster.node(node)).toMatchObject({ unschedulable: false, annotations: { [STATUS_ANNOTATION]: 'completed', [Annotation.runId]: 'run-1' } })
    }
    expect(s.helm.upgrades.map((u) => [u.version, u.noHooks ?? false])).toEqual([['3.29.0', false], ['3.29.0', true]])
    expect(s.cluster.runs.size).toBe(0)
    expect(s.cluster.leases.size).toBe(0)
  })

  it('a failed wave: its rollback step fails the workflow, later waves and finalize refuse to start', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.verification.set('node-1', 'fail')
    await planStep(s.deps, s.upgradeRequest(), 'run-1', WF)
    await waveStep(s.deps, RELEASE, 1, 'prepare', WF)
    await waveStep(s.deps, RELEASE, 1, 'upgrade', WF)
    expect((await waveStep(s.deps, RELEASE, 1, 'verify', WF)).nodes).toEqual({ 'node-1': 'rolling-back' })
    await expect(waveStep(s.deps, RELEASE, 1, 'rollback', WF)).rejects.toBeInstanceOf(NodesRolledBackError)
    expect(s.status('node-1')).toBe('rolled-back')
    expect(s.cluster.versionOn('node-1')).toBe('3.28.0')
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toMatch(/wave 1: node-1 failed/)

    await expect(waveStep(s.deps, RELEASE, 2, 'prepare', WF)).rejects.toThrow(/not starting wave 2/)
    await expect(finalizeStep(s.deps, RELEASE, WF)).rejects.toThrow(/not finalizing/)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })

  it('the exit handler rolls back nodes a dead step left mid-flight and releases the lock', async () => {
    const s = await scenario({ nodes: 2 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    await waveStep(s.deps, RELEASE, 1, 'prepare', WF)
    await waveStep(s.deps, RELEASE, 1, 'upgrade', WF)
    // the verify step died: both nodes are left `upgrading`, cordoned, on the new version
    expect(s.nodeNames.map((n) => [s.status(n), s.cluster.node(n).unschedulable, s.cluster.versionOn(n)])).toEqual([['upgrading', true, '3.29.0'], ['upgrading', true, '3.29.0']])

    const result = await exitStep(s.deps, RELEASE, WF)
    expect(result).toEqual({ rolledBack: ['node-1', 'node-2'], failed: [] })
    for (const node of s.nodeNames) {
      expect(statusWrites(s.cluster, node).slice(-2).map((w) => w.status)).toEqual(['rolling-back', 'rolled-back'])
      expect(s.cluster.node(node).unschedulable).toBe(false)
      expect(s.cluster.versionOn(node)).toBe('3.28.0')
    }
    expect(s.cluster.leases.size).toBe(0)
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toMatch(/workflow exit/)
  })

  it('the exit handler after a successful workflow only releases the lock', async () => {
    const s = await scenario({ nodes: 1 })
    await planStep(s.deps, s.upgradeRequest(), 'run-1', WF)
    await runWaveSteps(s, 1)
    await finalizeStep(s.deps, RELEASE, WF)
    const before = s.cluster.writes.length
    expect(await exitStep(s.deps, RELEASE, WF)).toEqual({ rolledBack: [], failed: [] })
    expect(s.cluster.writes.slice(before).filter((w) => w.resource !== 'leases')).toEqual([])
  })

  it('a step of another holder is refused while the workflow holds the lock; a step without a plan too', async () => {
    const s = await scenario({ nodes: 1 })
    await expect(waveStep(s.deps, RELEASE, 1, 'prepare', WF)).rejects.toBeInstanceOf(PreconditionError)
    await planStep(s.deps, s.upgradeRequest(), 'run-1', WF)
    await expect(waveStep(s.deps, RELEASE, 1, 'prepare', 'someone-else')).rejects.toBeInstanceOf(LockedError)
    await expect(waveStep(s.deps, RELEASE, 2, 'prepare', WF)).rejects.toThrow(/--wave 2: the run has 1 wave/)
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes')).toEqual([])
  })
})

describe('unlock', () => {
  it('breaks the lock, and with forgetRun drops the run record; node annotations untouched', async () => {
    const s = await scenario({ nodes: 1 })
    await planStep(s.deps, s.upgradeRequest(), 'run-1', WF)
    expect(await unlock(s.deps, RELEASE, false)).toEqual({ removedLock: expect.objectContaining({ holder: WF }) })
    expect(s.cluster.runs.size).toBe(1)
    expect(await unlock(s.deps, RELEASE, true)).toEqual({ forgotRun: 'run-1' })
    expect(s.cluster.runs.size).toBe(0)
    expect(s.cluster.leases.size).toBe(0)
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes')).toEqual([])
  })
})
