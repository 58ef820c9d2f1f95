import { describe, expect, it } from 'vitest'
import { Annotation } from '../../../src/lifecycle/engine/node-state.js'
import { batchNodes, parseBatchSize, planWaves, SKIP_LABEL } from '../../../src/lifecycle/run/plan.js'
import { pauseRun, resumeRun } from '../../../src/lifecycle/services/pause.service.js'
import { nodeStatus } from '../../../src/lifecycle/services/status.service.js'
import { planStep, waveStep } from '../../../src/lifecycle/services/steps.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { FAILED_AT_VERIFY, RELEASE, scenario, statusWrite, statusWrites } from '../../fakes/scenario.js'

describe('rollout rules', () => {
  it('a canary wave, then waves of the batch size', () => {
    expect(planWaves(['a', 'b', 'c', 'd', 'e', 'f'], 2, 1)).toEqual([['a'], ['b', 'c'], ['d', 'e'], ['f']])
    expect(planWaves(['a', 'b'], 3, 5)).toEqual([['a', 'b']])
    expect(() => planWaves(['a'], 1, 0)).toThrow(/^--canary: must be a whole number >= 1/)
  })

  it('a batch size as a number or a percentage of the selected nodes (rounded up, at least one)', () => {
    expect(parseBatchSize('--batch-size', '3')).toEqual({ nodes: 3 })
    expect(parseBatchSize('--batch-size', '25%')).toEqual({ percent: 25 })
    expect(batchNodes({ percent: 25 }, 10)).toBe(3)
    expect(batchNodes({ percent: 1 }, 10)).toBe(1)
    expect(batchNodes({ percent: 100 }, 10)).toBe(10)
    for (const bad of ['0', '0%', '101%', 'x', '2.5', '-1'])
      expect(() => parseBatchSize('--batch-size', bad)).toThrow(/^--batch-size: ".*" is not a batch size/)
  })

  it('a percentage batch and a canary plan the waves over the selected nodes', async () => {
    const s = await scenario({ nodes: 10 })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchPercent: 30, canary: 1, dryRun: true }), 'run-1')
    expect(report.waves.map((w) => w.length)).toEqual([1, 3, 3, 3])
    expect(report.rollout).toEqual({ batchSize: 3, canary: 1 })
  })

  it('a node with the skip label is never selected, never touched, and reported as skipped', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.setNode('node-2', { labels: { ...s.cluster.node('node-2').labels, [SKIP_LABEL]: 'true' } })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).toBe('success')
    expect(report.waves).toEqual([['node-1', 'node-3']])
    expect(report.nodes.find((n) => n.name === 'node-2')).toEqual({
      name: 'node-2',
      status: 'skipped',
      reason: `${SKIP_LABEL}=true`,
    })
    expect(report.summary).toMatch(/1 kept out by kata-lcm.katacontainers.io\/skip=true: node-2/)
    expect(s.cluster.writesTo('node-2')).toEqual([])
    // Every node kept out: refused before any write.
    const all = await scenario({ nodes: 2 })
    for (const n of all.nodeNames)
      all.cluster.setNode(n, { labels: { ...all.cluster.node(n).labels, [SKIP_LABEL]: 'true' } })
    await expect(upgrade(all.deps, all.upgradeRequest(), 'run-1')).rejects.toThrow(
      /every node matching all nodes carries kata-lcm.katacontainers.io\/skip=true \(node-1, node-2\)/,
    )
    expect(all.cluster.writes).toEqual([])
  })

  it('a soak: the next wave starts only after the soak, and the soaked nodes stay in service', async () => {
    const s = await scenario({ nodes: 2 })
    const report = await upgrade(s.deps, s.upgradeRequest({ soakMs: 120_000 }), 'run-1')
    expect(report.outcome).toBe('success')
    const completed = statusWrites(s.cluster, 'node-1').find((w) => w.status === 'completed')!.at
    const next = statusWrites(s.cluster, 'node-2').find((w) => w.status === 'cordoned')!.at
    expect(next - completed).toBeGreaterThanOrEqual(120_000)
    expect(s.cluster.node('node-1').annotations[Annotation.soakedInRun]).toBe('run-1')
    // No soak after the last wave.
    expect(s.cluster.node('node-2').annotations[Annotation.soakedInRun]).toBeUndefined()
  })

  it('a node that goes NotReady during its soak is cordoned again and rolled back; the run stops', async () => {
    const s = await scenario({ nodes: 2 })
    // node-1 completes within seconds (virtual time); five minutes into its ten-minute soak it goes NotReady.
    s.clock.setTimer(300_000, () => s.cluster.setNode('node-1', { ready: false }))
    const report = await upgrade(s.deps, s.upgradeRequest({ soakMs: 600_000 }), 'run-1')
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'completed')!.at).toBeLessThan(300_000)
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.find((n) => n.name === 'node-1')).toMatchObject({
      status: 'rolled-back',
      error: 'degraded during the soak: the node is NotReady',
    })
    expect(statusWrites(s.cluster, 'node-1').map((w) => w.status)).toEqual([
      'cordoned',
      'upgrading',
      'verifying',
      'completed',
      'rolling-back',
      'rolled-back',
    ])
    // Watched, not re-checked at the end: out of service at once, five minutes before the soak ends.
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'rolling-back')!.at).toBe(300_000)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })

  it("a node whose kata-deploy pod is replaced during its soak is rolled back at once, the wave's other node not marked soaked", async () => {
    const s = await scenario({ nodes: 3 })
    s.clock.setTimer(300_000, () => {
      const pod = s.cluster.kataDeployPodOn('node-1')!
      void s.cluster.deletePod(pod.namespace, pod.name)
    })
    const report = await upgrade(s.deps, s.upgradeRequest({ soakMs: 600_000, batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.find((n) => n.name === 'node-1')!.error).toMatch(/^degraded during the soak: /)
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'rolling-back')!.at).toBeLessThan(600_000)
    // node-2 stayed healthy but its soak was cut short: completed, not passed, and the run stopped.
    expect(s.cluster.node('node-2').annotations[Annotation.soakedInRun]).toBeUndefined()
    expect(s.cluster.writesTo('node-3')).toEqual([])
  })

  it('a kata-deploy pod replaced as its node goes back in service, before the soak first looks, is still a change', async () => {
    const s = await scenario({ nodes: 2 })
    // Right after the `completed` write, before the soak's watches or its first look: the same pod
    // the e2e deletes on seeing `completed`. Judged against the pod that was verified.
    // The replacement is Ready at once, so the soak's first look sees a healthy pod: only the pod
    // that was verified tells it apart.
    void s.cluster.afterWrite(statusWrite('node-1', 'completed'), () => s.cluster.replaceKataDeployPodNow('node-1'))
    const report = await upgrade(s.deps, s.upgradeRequest({ soakMs: 600_000 }), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.find((n) => n.name === 'node-1')!.error).toMatch(/^degraded during the soak: /)
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'rolling-back')!.at).toBeLessThan(600_000)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })
})

describe('a soak in job mode', () => {
  it("a node that loses kata-deploy's install label during its soak is rolled back", async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    s.clock.setTimer(300_000, () => {
      const labels = { ...s.cluster.node('node-1').labels }
      delete labels['katacontainers.io/kata-runtime']
      s.cluster.setNode('node-1', { labels })
    })
    const report = await upgrade(s.deps, s.upgradeRequest({ soakMs: 600_000 }), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.find((n) => n.name === 'node-1')!.error).toBe(
      'degraded during the soak: kata-deploy changed during the soak: labelled katacontainers.io/kata-runtime=true -> not labelled katacontainers.io/kata-runtime=true',
    )
    // The nodes' watch sees the label go: out of service at once.
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'rolling-back')!.at).toBe(300_000)
  })
})

describe('pause and resume', () => {
  it('a pause holds the next wave (the wave in progress finishes) until resume; status shows it', async () => {
    const s = await scenario({ nodes: 2 })
    // Paused as soon as node-1 completes: wave 2 must not start.
    void s.cluster
      .afterWrite(
        (w) => w.resource === 'nodes' && w.node === 'node-1' && JSON.stringify(w.detail).includes('"completed"'),
      )
      .then(() => pauseRun(s.deps, RELEASE, 'ops@laptop'))
    const run = upgrade(s.deps, s.upgradeRequest(), 'run-1')
    await s.cluster.afterWrite((w) => w.resource === 'secrets' && JSON.stringify(w.detail).includes('ops@laptop'))
    const paused = await nodeStatus(s.deps, RELEASE, {})
    expect(paused.run).toMatchObject({ runId: 'run-1', paused: { by: 'ops@laptop' } })
    // Ten virtual minutes later node-2 is still untouched.
    await s.clock.sleep(600_000)
    expect(s.cluster.writesTo('node-2')).toEqual([])
    expect(await resumeRun(s.deps, RELEASE)).toEqual({ runId: 'run-1', wasPaused: true })
    const report = await run
    expect(report.outcome).toBe('success')
    expect(s.events.ofType('info').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/^paused by ops@laptop at .*: wave 2 waits for kata-lcm resume$/),
    )
  })

  it('pause and resume without a run in flight are refused (exit 2)', async () => {
    const s = await scenario({ nodes: 1 })
    await expect(pauseRun(s.deps, RELEASE, 'me')).rejects.toMatchObject({
      exitCode: 2,
      message: 'no kata-lcm run is in flight for release kube-system/kata-deploy: nothing to pause',
    })
    await expect(resumeRun(s.deps, RELEASE)).rejects.toMatchObject({ exitCode: 2 })
  })
})

describe('pause in the Argo steps', () => {
  it("step prepare of the next wave waits while the run is paused; the wave's other steps are not held", async () => {
    const s = await scenario({ nodes: 2 })
    await planStep(s.deps, s.upgradeRequest(), 'run-1', 'argo/wf')
    for (const step of ['prepare', 'upgrade', 'verify', 'rollback'] as const)
      await waveStep(s.deps, RELEASE, 1, step, 'argo/wf')
    await pauseRun(s.deps, RELEASE, 'ops')
    let started = false
    const prepare = waveStep(s.deps, RELEASE, 2, 'prepare', 'argo/wf').then((r) => {
      started = true
      return r
    })
    await s.clock.sleep(300_000)
    expect(started).toBe(false)
    expect(s.cluster.writesTo('node-2')).toEqual([])
    await resumeRun(s.deps, RELEASE)
    expect((await prepare).nodes).toEqual({ 'node-2': 'cordoned' })
  })
})

describe('a wave verifies as one', () => {
  it('each node is marked upgrading before its pod is deleted, and verifies as soon as its own kata-deploy is Ready', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.kataDeploy.readyMsOn.set('node-3', 60_000)
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).toBe('success')
    const status = (node: string, to: string) => statusWrites(s.cluster, node).find((w) => w.status === to)!
    const kataDeployDelete = (node: string) =>
      s.cluster.writes.find(
        (w) => w.verb === 'delete' && w.resource === 'pods' && w.node === node && w.name.startsWith('kata-deploy-'),
      )!
    for (const node of s.nodeNames) expect(status(node, 'upgrading').seq).toBeLessThan(kataDeployDelete(node).seq)
    // node-1 moved on to verifying a minute before node-3's kata-deploy was Ready (and before its pod was created).
    const verificationCreate = s.cluster.writes.find(
      (w) => w.verb === 'create' && w.resource === 'pods' && w.node === 'node-1',
    )!
    expect(status('node-1', 'verifying').at).toBeLessThan(status('node-3', 'verifying').at - 55_000)
    expect(status('node-1', 'verifying').seq).toBeLessThan(verificationCreate.seq)
  })

  it("one watch over the wave's verification pods; a node that passes is back in service while the others still verify", async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-3', { behaviour: 'succeed', runMs: 60_000 })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).toBe('success')
    const at = (node: string, status: string) => statusWrites(s.cluster, node).find((w) => w.status === status)!.at
    // node-1 completed (uncordoned) a minute before node-3's pod finished.
    expect(at('node-3', 'completed') - at('node-1', 'completed')).toBeGreaterThanOrEqual(55_000)
    // Its verification pod was deleted as it passed, not at the wave's end.
    const podDelete = (node: string) =>
      s.cluster.writes.find(
        (w) => w.verb === 'delete' && w.resource === 'pods' && w.node === node && w.name.startsWith('kata-verify-'),
      )!.at
    expect(at('node-3', 'completed') - podDelete('node-1')).toBeGreaterThanOrEqual(55_000)
    // Two pod watches for the wave of three: its kata-deploy pods, and its verification pods.
    expect(s.cluster.reads.filter((r) => r === 'waitForPods')).toHaveLength(2)
  })

  it("in one process a node verifies and goes back in service while the wave's last kata-deploy is still rolling", async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.kataDeploy.readyMsOn.set('node-3', 60_000)
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).toBe('success')
    const at = (node: string, status: string) => statusWrites(s.cluster, node).find((w) => w.status === status)!.at
    const verificationCreate = (node: string) =>
      s.cluster.writes.find((w) => w.verb === 'create' && w.resource === 'pods' && w.node === node)!
    // node-1's pod was created, and node-1 completed, most of a minute before node-3 was Ready.
    expect(verificationCreate('node-1').at).toBeLessThan(at('node-3', 'verifying') - 55_000)
    // The run held the shared watches while its waves ran, and let them go at its end.
    expect([s.cluster.watchHolds, s.cluster.watchKeepers]).toEqual([1, 0])
    expect(at('node-1', 'completed')).toBeLessThan(at('node-3', 'verifying') - 50_000)
    // node-3's pod only after its own kata-deploy was Ready, and the wave was still judged as one.
    expect(verificationCreate('node-3').seq).toBeGreaterThan(
      statusWrites(s.cluster, 'node-3').find((w) => w.status === 'verifying')!.seq,
    )
    expect(s.cluster.reads.filter((r) => r === 'waitForPods')).toHaveLength(2)
  })

  it("in one process each node is upgraded as soon as its own cordon landed, not after the wave's slowest", async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.slowNextPatch.set('node-3', 60_000)
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).toBe('success')
    const cordoned = (node: string) => statusWrites(s.cluster, node).find((w) => w.status === 'cordoned')!
    const kataDeployDelete = (node: string) =>
      s.cluster.writes.find(
        (w) => w.verb === 'delete' && w.resource === 'pods' && w.node === node && w.name.startsWith('kata-deploy-'),
      )!
    // node-1 was restarted, and back in service, while node-3's cordon was still on its way.
    expect(kataDeployDelete('node-1').at).toBeLessThan(cordoned('node-3').at - 50_000)
    expect(statusWrites(s.cluster, 'node-1').find((w) => w.status === 'completed')!.at).toBeLessThan(
      cordoned('node-3').at,
    )
    // node-3 itself: cordoned, then marked upgrading, then restarted.
    const upgrading = statusWrites(s.cluster, 'node-3').find((w) => w.status === 'upgrading')!
    expect(cordoned('node-3').seq).toBeLessThan(upgrading.seq)
    expect(upgrading.seq).toBeLessThan(kataDeployDelete('node-3').seq)
  })

  it('in one process a node whose cordon failed is never upgraded; the others are', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.injectFailure({ verb: 'patch', resource: 'nodes', name: 'node-3' })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).not.toBe('success')
    const statuses = (node: string) => statusWrites(s.cluster, node).map((w) => w.status)
    expect(statuses('node-3')).not.toContain('upgrading')
    expect(statuses('node-3')[0]).toBe('rolling-back')
    for (const node of ['node-1', 'node-2']) expect(statuses(node)).toContain('verifying')
  })

  it('in one process a node whose cordon and failure record both failed is never upgraded, and the wave ends', async () => {
    const s = await scenario({ nodes: 3 })
    // Its state stays as it was: the upgrade beside the cordons gives it up once they are all over.
    s.cluster.injectFailure({ verb: 'patch', resource: 'nodes', name: 'node-3', times: 2 })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3 }), 'run-1')
    expect(report.outcome).not.toBe('success')
    // Not even tried: a try would be refused by the node's state table ("refusing status (none) -> upgrading").
    expect(report.nodes.find((n) => n.name === 'node-3')!.error).not.toMatch(/refusing status/)
    expect(statusWrites(s.cluster, 'node-3').map((w) => w.status)).not.toContain('upgrading')
    expect(s.cluster.writes.some((w) => w.verb === 'delete' && w.node === 'node-3')).toBe(false)
    for (const node of ['node-1', 'node-2']) expect(s.status(node)).toBe('completed')
  })

  it('a node whose pod passed but whose completion could not be written is rolled back, as any failed write is', async () => {
    const s = await scenario({ nodes: 2 })
    s.cluster.injectFailure({
      verb: 'patch',
      resource: 'nodes',
      name: 'node-2',
      when: (w) => JSON.stringify(w.detail).includes('"completed"'),
    })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(statusWrites(s.cluster, 'node-2').map((w) => w.status)).toEqual(FAILED_AT_VERIFY)
    expect(s.status('node-1')).toBe('completed')
  })

  it('the Argo upgrade step creates no verification pod: its verify step does', async () => {
    const s = await scenario({ nodes: 2 })
    await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', 'argo/wf')
    await waveStep(s.deps, RELEASE, 1, 'prepare', 'argo/wf')
    await waveStep(s.deps, RELEASE, 1, 'upgrade', 'argo/wf')
    const creates = () => s.cluster.writes.filter((w) => w.verb === 'create' && w.resource === 'pods')
    expect(creates()).toEqual([])
    expect((await waveStep(s.deps, RELEASE, 1, 'verify', 'argo/wf')).nodes).toEqual({
      'node-1': 'completed',
      'node-2': 'completed',
    })
    expect(creates()).toHaveLength(2)
  })
})
