import { describe, expect, it, vi } from 'vitest'
import { LockedError, NodesRolledBackError, PreconditionError } from '../../../src/lifecycle/errors.js'
import { LOCK_TTL_SECONDS, lockName } from '../../../src/lifecycle/run/lock.js'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { WAVE_STEPS, type WaveStep } from '../../../src/lifecycle/engine/phases.js'
import {
  exitStep,
  finalizeStep,
  planStep,
  waveStep,
  type StepTiming,
} from '../../../src/lifecycle/services/steps.service.js'
import { unlock } from '../../../src/lifecycle/services/unlock.service.js'
import { pauseRun, resumeRun } from '../../../src/lifecycle/services/pause.service.js'
import { FakeProcess } from '../../fakes/fake-process.js'
import { RELEASE, scenario, statusWrites, type Scenario } from '../../fakes/scenario.js'

const WF = 'workflow/kata-lcm-abc12'
const LEASE = `${RELEASE.namespace}/${lockName(RELEASE)}`
const PHASES: readonly WaveStep[] = WAVE_STEPS
/** A node's statuses through one upgrade, in order. */
const UPGRADED = ['cordoned', 'upgrading', 'verifying', 'completed']

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
    expect(plan).toEqual({ runId: 'run-1', waves: 2, nodes: 3, skipped: 0, policy: 'none (--no-policy)' })
    expect(s.cluster.runs.get('kube-system/kata-deploy')).toMatchObject({
      runId: 'run-1',
      previousVersion: '3.28.0',
      targetVersion: '3.29.0',
      waves: [['node-1', 'node-2'], ['node-3']],
    })
    expect(s.cluster.leases.get(LEASE)?.holder).toBe(WF)
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes')).toEqual([])
    // Each step hands the lease over to the next (with the client limits it reached, on a real cluster).
    const handOvers = () =>
      s.cluster.writes.filter(
        (w) => w.resource === 'leases' && (w.detail as { handOver?: boolean } | undefined)?.handOver,
      ).length
    expect(handOvers()).toBe(1)
    await waveStep(s.deps, RELEASE, 1, 'prepare', WF)
    expect(handOvers()).toBe(2)

    expect(await runWaveSteps(s, 1)).toEqual({ 'node-1': 'completed', 'node-2': 'completed' })
    expect(s.cluster.writesTo('node-3')).toEqual([])
    expect(await runWaveSteps(s, 2)).toEqual({ 'node-3': 'completed' })
    await finalizeStep(s.deps, RELEASE, WF)

    for (const node of s.nodeNames) {
      expect(s.cluster.versionOn(node)).toBe('3.29.0')
      expect(s.cluster.node(node)).toMatchObject({
        unschedulable: false,
        annotations: { [STATUS_ANNOTATION]: 'completed', [Annotation.runId]: 'run-1' },
      })
    }
    expect(s.helm.upgrades.map((u) => [u.version, u.noHooks ?? false])).toEqual([
      ['3.29.0', false],
      ['3.29.0', true],
    ])
    expect(s.cluster.runs.size).toBe(0)
    expect(s.cluster.leases.size).toBe(0)
  })

  for (const mode of ['daemonset', 'job'] as const) {
    it(`${mode}: every wave step run twice in a row still upgrades each node once and completes the wave`, async () => {
      const s = await scenario({ nodes: 3, mode })
      await planStep(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1', WF)
      for (const step of PHASES) {
        await waveStep(s.deps, RELEASE, 1, step, WF)
        // What Argo's retryStrategy does when the step's pod is lost after its work.
        expect((await waveStep(s.deps, RELEASE, 1, step, WF)).step).toBe(step)
      }
      await finalizeStep(s.deps, RELEASE, WF)
      for (const node of s.nodeNames) {
        expect(s.status(node)).toBe('completed')
        expect(s.cluster.versionOn(node)).toBe(s.target)
        expect(s.cluster.node(node).unschedulable).toBe(false)
        expect(statusWrites(s.cluster, node).map((w) => w.status)).toEqual(UPGRADED)
      }
      // Upgraded once: one helm upgrade with hooks (the wave), one without (finalize); no pod restarted twice.
      expect(s.helm.upgrades.map((u) => u.noHooks ?? false)).toEqual([false, true])
      if (mode === 'daemonset') {
        const restarts = s.cluster.writes.filter(
          (w) => w.verb === 'delete' && w.resource === 'pods' && w.namespace === RELEASE.namespace,
        )
        expect(restarts.map((w) => w.node).sort()).toEqual([...s.nodeNames].sort())
      }
    })
  }

  it('a retried verify step after the wave completed rolls nothing back; a retried rollback of a healthy wave succeeds', async () => {
    const s = await scenario({ nodes: 3 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1', WF)
    await runWaveSteps(s, 1)
    const before = s.cluster.writes.length
    expect((await waveStep(s.deps, RELEASE, 1, 'verify', WF)).nodes).toEqual({
      'node-1': 'completed',
      'node-2': 'completed',
      'node-3': 'completed',
    })
    expect((await waveStep(s.deps, RELEASE, 1, 'rollback', WF)).nodes).toEqual({
      'node-1': 'completed',
      'node-2': 'completed',
      'node-3': 'completed',
    })
    expect(s.cluster.writes.slice(before).filter((w) => w.resource !== 'leases')).toEqual([])
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toBeUndefined()
  })

  it('a retried rollback step of a failed wave fails again without reverting anything twice', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.verification.set('node-1', 'fail')
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    for (const step of ['prepare', 'upgrade', 'verify'] as const) await waveStep(s.deps, RELEASE, 1, step, WF)
    // The wave's statuses reach the caller (the template's node counts) before the step fails.
    const settled: Record<string, string>[] = []
    await expect(
      waveStep(s.deps, RELEASE, 1, 'rollback', WF, { settled: (n) => settled.push(n) }),
    ).rejects.toBeInstanceOf(NodesRolledBackError)
    expect(settled).toEqual([{ 'node-1': 'rolled-back', 'node-2': 'completed' }])
    const upgrades = s.helm.upgrades.length
    const writes = s.cluster.writes.length
    await expect(waveStep(s.deps, RELEASE, 1, 'rollback', WF)).rejects.toBeInstanceOf(NodesRolledBackError)
    expect(s.helm.upgrades.length).toBe(upgrades)
    expect(s.cluster.writes.slice(writes).filter((w) => w.resource !== 'leases')).toEqual([])
    expect([s.status('node-1'), s.status('node-2')]).toEqual(['rolled-back', 'completed'])
  })

  it("step wave (onePodPerWave): a whole wave in one process, the same end state as the four steps, each node's path as the CLI's", async () => {
    const s = await scenario({ nodes: 3 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    const timings: StepTiming[] = []
    expect((await waveStep(s.deps, RELEASE, 1, 'wave', WF, { settled: (_, t) => timings.push(t) })).nodes).toEqual({
      'node-1': 'completed',
      'node-2': 'completed',
    })
    // Where the process spent its time (the step's outputs before-ms, handlers-ms): since it started, then in the handlers.
    expect(timings).toHaveLength(1)
    expect(timings[0]!.beforeMs).toBeGreaterThan(0)
    expect(timings[0]!.handlersMs).toBeGreaterThanOrEqual(0)
    expect(s.cluster.writesTo('node-3')).toEqual([])
    // A retry of the pod after its work (Argo's retryStrategy): nothing is done twice.
    const upgrades = s.helm.upgrades.length
    expect((await waveStep(s.deps, RELEASE, 1, 'wave', WF)).nodes).toEqual({
      'node-1': 'completed',
      'node-2': 'completed',
    })
    expect(s.helm.upgrades.length).toBe(upgrades)
    expect((await waveStep(s.deps, RELEASE, 2, 'wave', WF)).nodes).toEqual({ 'node-3': 'completed' })
    await finalizeStep(s.deps, RELEASE, WF)
    for (const node of s.nodeNames) {
      expect(s.cluster.versionOn(node)).toBe('3.29.0')
      expect(s.cluster.node(node).unschedulable).toBe(false)
      expect(statusWrites(s.cluster, node).map((w) => w.status)).toEqual(UPGRADED)
    }
    expect(s.cluster.runs.size).toBe(0)
  })

  it('step wave with a node failing verification: rolled back, the run stopped, the step fails; a retry fails again and starts no node over; the next wave refuses', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-1', 'fail')
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    const settled: Record<string, string>[] = []
    await expect(waveStep(s.deps, RELEASE, 1, 'wave', WF, { settled: (n) => settled.push(n) })).rejects.toBeInstanceOf(
      NodesRolledBackError,
    )
    expect(settled).toEqual([{ 'node-1': 'rolled-back', 'node-2': 'completed' }])
    expect(s.cluster.versionOn('node-1')).toBe('3.28.0')
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toMatch(/wave 1: node-1 failed/)
    const upgrades = s.helm.upgrades.length
    await expect(waveStep(s.deps, RELEASE, 1, 'wave', WF)).rejects.toBeInstanceOf(NodesRolledBackError)
    expect(s.helm.upgrades.length).toBe(upgrades)
    expect([s.status('node-1'), s.status('node-2')]).toEqual(['rolled-back', 'completed'])
    await expect(waveStep(s.deps, RELEASE, 2, 'wave', WF)).rejects.toThrow(/not starting wave 2/)
    expect(s.cluster.writesTo('node-3')).toEqual([])
  })

  it('step wave retried after its pod died with a node rolled back but the stop not yet recorded: finishes nothing anew, records the stop, fails', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.verification.set('node-1', 'fail')
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    await expect(waveStep(s.deps, RELEASE, 1, 'wave', WF)).rejects.toBeInstanceOf(NodesRolledBackError)
    // As if the pod died after the revert, before it recorded the stop.
    const record = s.cluster.runs.get('kube-system/kata-deploy')!
    s.cluster.runs.set('kube-system/kata-deploy', { ...record, stoppedBy: undefined })
    const upgrades = s.helm.upgrades.length
    const nodeWrites = s.cluster.writes.filter((w) => w.resource === 'nodes').length
    await expect(waveStep(s.deps, RELEASE, 1, 'wave', WF)).rejects.toBeInstanceOf(NodesRolledBackError)
    expect(s.helm.upgrades.length).toBe(upgrades)
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes').length).toBe(nodeWrites)
    expect(s.status('node-1')).toBe('rolled-back')
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toMatch(/wave 1: node-1 failed/)
  })

  it('the lease is renewed while a step runs longer than its TTL, and taken over once its holder is killed', async () => {
    // A verification pod that runs 5 minutes: the verify step outlives the 60 s lease five times over.
    const s = await scenario({ nodes: 1, timings: { runMs: 5 * 60_000 } })
    const request = s.upgradeRequest()
    await planStep(
      s.deps,
      { ...request, verification: { ...request.verification, timeoutMs: 10 * 60_000 } },
      'run-1',
      WF,
    )
    await waveStep(s.deps, RELEASE, 1, 'prepare', WF)
    await waveStep(s.deps, RELEASE, 1, 'upgrade', WF)
    const verifying = new FakeProcess(s.deps)
    const step = waveStep(verifying.deps, RELEASE, 1, 'verify', WF)
    let other = await waveStep(s.deps, RELEASE, 1, 'verify', 'workflow/another').catch((e: unknown) => e)
    expect(other).toBeInstanceOf(LockedError)
    await s.clock.sleep(3 * 60_000)
    // Still refused three minutes in: the step renewed the lease every TTL/3.
    other = await waveStep(s.deps, RELEASE, 1, 'prepare', 'workflow/another').catch((e: unknown) => e)
    expect(other).toBeInstanceOf(LockedError)
    expect(Date.parse(s.cluster.leases.get(LEASE)!.renewedAt)).toBeGreaterThan(
      s.clock.now().getTime() - LOCK_TTL_SECONDS * 1000,
    )
    void step
    verifying.kill()
    await s.clock.sleep(LOCK_TTL_SECONDS * 1000 + 1_000)
    // The dead holder's lease expired within the TTL: another holder takes it and the wave converges.
    expect((await waveStep(s.deps, RELEASE, 1, 'verify', 'workflow/retry')).nodes).toEqual({ 'node-1': 'completed' })
    expect(s.cluster.leases.get(LEASE)?.holder).toBe('workflow/retry')
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
    // the verify step died: both nodes are left `verifying` (upgraded, not yet verified), cordoned, on the new version
    expect(s.nodeNames.map((n) => [s.status(n), s.cluster.node(n).unschedulable, s.cluster.versionOn(n)])).toEqual([
      ['verifying', true, '3.29.0'],
      ['verifying', true, '3.29.0'],
    ])

    const result = await exitStep(s.deps, RELEASE, WF)
    expect(result).toEqual({ rolledBack: ['node-1', 'node-2'], failed: [] })
    for (const node of s.nodeNames) {
      expect(
        statusWrites(s.cluster, node)
          .slice(-2)
          .map((w) => w.status),
      ).toEqual(['rolling-back', 'rolled-back'])
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

describe("overlapping waves (step wave --wait-turn, the chart's overlapWaves)", () => {
  const overlapping = (s: Scenario, wave: number) => waveStep(s.deps, RELEASE, wave, 'wave', WF, { overlap: true })

  it("wave 2's pod, started beside wave 1's, waits for it to be over, then runs: no write of wave 2 before wave 1 is done", async () => {
    const s = await scenario({ nodes: 3 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    const second = overlapping(s, 2)
    expect((await overlapping(s, 1)).nodes).toEqual({ 'node-1': 'completed', 'node-2': 'completed' })
    expect((await second).nodes).toEqual({ 'node-3': 'completed' })
    const lastOfWave1 = Math.max(...['node-1', 'node-2'].flatMap((n) => s.cluster.writesTo(n).map((w) => w.seq)))
    const firstOfWave2 = Math.min(...s.cluster.writesTo('node-3').map((w) => w.seq))
    expect(firstOfWave2).toBeGreaterThan(lastOfWave1)
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.wavesDone).toBe(2)
  })

  it('wave 1 fails while wave 2 waits: wave 2 starts nothing and fails, naming the stop', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-1', 'fail')
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    const second = overlapping(s, 2).catch((e: unknown) => e)
    await expect(overlapping(s, 1)).rejects.toBeInstanceOf(NodesRolledBackError)
    const refused = await second
    expect(refused).toBeInstanceOf(NodesRolledBackError)
    expect((refused as Error).message).toMatch(/not starting wave 2: the run stopped after wave 1: node-1 failed/)
    expect(s.cluster.writesTo('node-3')).toEqual([])
  })

  it('wave 1 fails on an error of its own (the API server) while wave 2 waits: the run is marked stopped, so wave 2 stops too rather than wait for ever', async () => {
    const s = await scenario({ nodes: 3 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    vi.spyOn(s.cluster, 'getNode').mockRejectedValueOnce(new Error('the API server is down'))
    const second = overlapping(s, 2).catch((e: unknown) => e)
    const first = await overlapping(s, 1).catch((e: unknown) => e)
    expect((first as Error).message).toMatch(/the API server is down/)
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toMatch(/^wave 1: .*the API server is down/)
    const refused = await second
    expect(refused).toBeInstanceOf(NodesRolledBackError)
    expect((refused as Error).message).toMatch(/not starting wave 2: the run stopped after wave 1: /)
    expect(s.cluster.writesTo('node-3')).toEqual([])
  })

  it("a plan that resumes the run starts its waves' turns over: an earlier plan's wavesDone is not this one's", async () => {
    const s = await scenario({ nodes: 4 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1', WF)
    await overlapping(s, 1)
    await overlapping(s, 2)
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.wavesDone).toBe(2)
    // The workflow resubmitted: its plan resumes run-1 with the nodes left, as waves 1 and 2.
    await planStep(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-2', WF)
    expect(s.cluster.runs.get('kube-system/kata-deploy')).toMatchObject({
      runId: 'run-1',
      waves: [['node-3'], ['node-4']],
    })
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.wavesDone).toBeUndefined()
  })
})

describe("several waves in one pod (step wave --pod P --waves-per-pod K, the chart's wavesPerPod)", () => {
  it("pod 1 runs waves 1 and 2 in order, sharing its watches; pod 2 runs what is left (wave 3 of 3): every node completed, each wave's counts and times reach the outputs", async () => {
    const s = await scenario({ nodes: 3 })
    expect(await planStep(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1', WF)).toMatchObject({ waves: 3 })
    const settled: Record<string, string>[] = []
    const timings: StepTiming[] = []
    const holds = s.cluster.watchHolds
    const first = await waveStep(s.deps, RELEASE, 1, 'wave', WF, {
      through: 2,
      settled: (n, t) => {
        settled.push(n)
        timings.push(t)
      },
    })
    expect(first.nodes).toEqual({ 'node-1': 'completed', 'node-2': 'completed' })
    expect(settled).toEqual([{ 'node-1': 'completed' }, { 'node-1': 'completed', 'node-2': 'completed' }])
    expect(timings[1]!.handlersMs).toBeGreaterThanOrEqual(timings[0]!.handlersMs)
    expect(s.cluster.watchHolds - holds).toBe(1)
    expect(s.cluster.watchKeepers).toBe(0)
    // Wave 2 started after wave 1 was over.
    const lastOfWave1 = Math.max(...s.cluster.writesTo('node-1').map((w) => w.seq))
    expect(Math.min(...s.cluster.writesTo('node-2').map((w) => w.seq))).toBeGreaterThan(lastOfWave1)
    expect((await waveStep(s.deps, RELEASE, 3, 'wave', WF, { through: 4 })).nodes).toEqual({ 'node-3': 'completed' })
    await finalizeStep(s.deps, RELEASE, WF)
    expect(['node-1', 'node-2', 'node-3'].map((n) => s.status(n))).toEqual(['completed', 'completed', 'completed'])
  })

  it('a wave that fails stops the pod there: its node rolled back, the run stopped, the next wave of the same pod untouched', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-1', 'fail')
    await planStep(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1', WF)
    const settled: Record<string, string>[] = []
    await expect(
      waveStep(s.deps, RELEASE, 1, 'wave', WF, { through: 3, settled: (n) => settled.push(n) }),
    ).rejects.toBeInstanceOf(NodesRolledBackError)
    expect(settled).toEqual([{ 'node-1': 'rolled-back' }])
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.stoppedBy).toMatch(/^wave 1: node-1 failed/)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })

  it('asks the gates itself before each of its waves: a pause made during wave 1 holds wave 2 in the pod until resumed', async () => {
    const s = await scenario({ nodes: 2 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1', WF)
    void s.cluster
      .afterWrite(
        (w) => w.resource === 'nodes' && w.node === 'node-1' && JSON.stringify(w.detail).includes('"completed"'),
      )
      .then(() => pauseRun(s.deps, RELEASE, 'ops@laptop'))
    const pod = waveStep(s.deps, RELEASE, 1, 'wave', WF, { through: 2 })
    await s.cluster.afterWrite((w) => w.resource === 'secrets' && JSON.stringify(w.detail).includes('ops@laptop'))
    await s.clock.sleep(600_000)
    expect(s.cluster.writesTo('node-2')).toEqual([])
    await resumeRun(s.deps, RELEASE)
    expect((await pod).nodes).toEqual({ 'node-1': 'completed', 'node-2': 'completed' })
    expect(s.events.ofType('info').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/wave 2 waits for kata-lcm resume$/),
    )
  })
})

describe('unlock', () => {
  it('breaks the lock, and with forgetRun drops the run record; node annotations untouched', async () => {
    const s = await scenario({ nodes: 1 })
    await planStep(s.deps, s.upgradeRequest(), 'run-1', WF)
    expect(await unlock(s.deps, RELEASE, false)).toEqual({ removedLock: expect.objectContaining({ holder: WF }) })
    expect(s.cluster.runs.size).toBe(1)
    expect(await unlock(s.deps, RELEASE, true)).toEqual({ forgotRun: 'run-1', operatorValues: {} })
    expect(s.cluster.runs.size).toBe(0)
    expect(s.cluster.leases.size).toBe(0)
    expect(s.cluster.writes.filter((w) => w.resource === 'nodes')).toEqual([])
  })
})

describe('a wave step reads the run record once', () => {
  it('without windows and not paused: the record the gates read is the one the wave runs from', async () => {
    const s = await scenario({ nodes: 2 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    const reads = vi.spyOn(s.cluster, 'readRun')
    expect((await waveStep(s.deps, RELEASE, 1, 'wave', WF)).nodes).toEqual({
      'node-1': 'completed',
      'node-2': 'completed',
    })
    expect(reads).toHaveBeenCalledTimes(1)
  })

  it('paused, then resumed: the wave runs from the record as it is after the pause', async () => {
    const s = await scenario({ nodes: 2 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', WF)
    const key = 'kube-system/kata-deploy'
    const record = s.cluster.runs.get(key)!
    await s.cluster.writeRun({ ...record, paused: { by: 'ops', at: '2026-12-05T00:00:00Z' } })
    const step = waveStep(s.deps, RELEASE, 1, 'wave', WF)
    await new Promise((resolve) => setTimeout(resolve, 10))
    const { paused: _, ...resumed } = s.cluster.runs.get(key)!
    await s.cluster.writeRun(resumed)
    expect((await step).nodes).toEqual({ 'node-1': 'completed', 'node-2': 'completed' })
  })
})
