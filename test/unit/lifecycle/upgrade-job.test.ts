import { describe, expect, it } from 'vitest'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { dispatcherPlacement, judgeInstallJob } from '../../../src/lifecycle/modes/job.strategy.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import type { JobView } from '../../../src/ports/cluster.port.js'
import { scenario, statusWrites, type Scenario } from '../../fakes/scenario.js'

const scoped = (s: Scenario) =>
  s.helm.upgradesWith(false).map((u) => ({
    version: u.version,
    job: u.values.job,
    mode: u.values.deploymentMode,
    verification: u.values.verification,
    tolerations: u.values.tolerations,
  }))
/** What kata-lcm adds so the dispatcher pod tolerates the wave's cordon (top-level before 4.1.0). */
const CORDON = [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }]
const installJobs = (s: Scenario) =>
  [...s.cluster.store.jobs.values()].map((j) => `${j.targetNode}:${j.images[0]!.split(':').at(-1)}:${j.outcome}`)

describe('upgrade, job mode', () => {
  it('one scoped helm upgrade per wave (job.nodes = the wave, job.parallelism = batch size), then the operator values back', async () => {
    const s = await scenario({ mode: 'job', nodes: 4, userValues: { job: { backoffLimit: 1 } } })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')

    expect(report).toMatchObject({
      outcome: 'success',
      mode: 'job',
      waves: [
        ['node-1', 'node-2'],
        ['node-3', 'node-4'],
      ],
      mixedFleet: false,
    })
    expect(scoped(s)).toEqual([
      {
        version: '3.33.0',
        job: { backoffLimit: 1, nodes: ['node-1', 'node-2'], parallelism: 2 },
        mode: 'job',
        verification: { pod: '' },
        tolerations: CORDON,
      },
      {
        version: '3.33.0',
        job: { backoffLimit: 1, nodes: ['node-3', 'node-4'], parallelism: 2 },
        mode: 'job',
        verification: { pod: '' },
        tolerations: CORDON,
      },
    ])
    expect(s.helm.upgradesWith(true)).toEqual([
      expect.objectContaining({ version: '3.33.0', values: { deploymentMode: 'job', job: { backoffLimit: 1 } } }),
    ])
    expect(installJobs(s).sort()).toEqual([
      'node-1:3.33.0:Complete',
      'node-2:3.33.0:Complete',
      'node-3:3.33.0:Complete',
      'node-4:3.33.0:Complete',
    ])
    for (const node of s.nodeNames) {
      expect(s.cluster.versionOn(node)).toBe('3.33.0')
      expect(s.cluster.node(node).annotations).toMatchObject({
        [STATUS_ANNOTATION]: 'completed',
        [Annotation.currentVersion]: '3.33.0',
      })
      expect(s.cluster.node(node).unschedulable).toBe(false)
    }
    // nothing in job mode waits on (or even looks at) a DaemonSet
    expect(s.cluster.reads).not.toContain('daemonSetRevisionHash')
    expect(s.cluster.reads).not.toContain('getDaemonSet')
    // node-3 is only touched after wave 1 completed
    const completed1 = statusWrites(s.cluster, 'node-2').find((w) => w.status === 'completed')!.seq
    expect(s.cluster.writesTo('node-3')[0]!.seq).toBeGreaterThan(completed1)
  })

  it('a last, smaller wave gets a parallelism no larger than itself', async () => {
    const s = await scenario({ mode: 'job', nodes: 3 })
    await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(scoped(s).map((u) => u.job)).toEqual([
      { nodes: ['node-1', 'node-2'], parallelism: 2 },
      { nodes: ['node-3'], parallelism: 1 },
    ])
  })

  it('a failed install Job on one node: only that node is reverted, with a scoped upgrade to the previous version', async () => {
    const s = await scenario({ mode: 'job', nodes: 3 })
    s.cluster.kataDeploy.installJobs.set('node-2@3.33.0', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')

    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.find((n) => n.name === 'node-2')).toMatchObject({
      status: 'rolled-back',
      version: '3.32.0',
      error: expect.stringMatching(/install Job kata-deploy-install-node-2-r2 for node-2 failed: BackoffLimitExceeded/),
    })
    expect(scoped(s)).toEqual([
      {
        version: '3.33.0',
        job: { nodes: ['node-1', 'node-2'], parallelism: 2 },
        mode: 'job',
        verification: { pod: '' },
        tolerations: CORDON,
      },
      {
        version: '3.32.0',
        job: { nodes: ['node-2'], parallelism: 1 },
        mode: 'job',
        verification: { pod: '' },
        tolerations: CORDON,
      },
    ])
    expect(s.cluster.versionOn('node-1')).toBe('3.33.0')
    expect(s.status('node-1')).toBe('completed')
    expect(s.cluster.versionOn('node-2')).toBe('3.32.0')
    expect(s.cluster.node('node-2').annotations).toMatchObject({
      [STATUS_ANNOTATION]: 'rolled-back',
      [Annotation.currentVersion]: '3.32.0',
    })
    expect(s.cluster.node('node-2').unschedulable).toBe(false)
    // node-2 never got a verification pod; node-3 nothing at all
    expect(s.cluster.writes.filter((w) => w.verb === 'create' && w.resource === 'pods').map((w) => w.node)).toEqual([
      'node-1',
    ])
    expect(s.cluster.writesTo('node-3')).toEqual([])
    expect(s.helm.upgradesWith(true)).toEqual([])
  })

  it('the same when helm returns before the Jobs finish: each node is judged by its own Job (watch)', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    s.cluster.kataDeploy.helmWaitsForJobs = false
    s.cluster.kataDeploy.installJobs.set('node-1@3.33.0', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(report.nodes.map((n) => [n.name, n.status])).toEqual([
      ['node-1', 'rolled-back'],
      ['node-2', 'completed'],
    ])
    expect(s.cluster.reads).toContain('waitForJobs')
    expect(s.cluster.versionOn('node-1')).toBe('3.32.0')
  })

  it('an install Job that never finishes fails the node at the ready timeout', async () => {
    const s = await scenario({ mode: 'job', nodes: 1 })
    s.cluster.kataDeploy.helmWaitsForJobs = false
    s.cluster.kataDeploy.installJobs.set('node-1@3.33.0', 'hang')
    const report = await upgrade(s.deps, s.upgradeRequest({ readyTimeoutMs: 60_000 }), 'run-1')
    expect(report.nodes[0]).toMatchObject({
      status: 'rolled-back',
      error: 'install Job for node-1 did not finish within 60s',
    })
    const writes = statusWrites(s.cluster, 'node-1')
    expect(writes.find((w) => w.status === 'rolling-back')!.at - writes.find((w) => w.status === 'upgrading')!.at).toBe(
      60_000,
    )
  })

  it('a verification failure reverts just that node with a scoped upgrade', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    s.cluster.verification.set('node-1', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(scoped(s).map((u) => [u.version, u.job])).toEqual([
      ['3.33.0', { nodes: ['node-1'], parallelism: 1 }],
      ['3.32.0', { nodes: ['node-1'], parallelism: 1 }],
    ])
    expect(s.cluster.versionOn('node-1')).toBe('3.32.0')
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })

  // An earlier run's finished Job (kept for the chart's ttlSecondsAfterFinished) must never be the
  // verdict, even when helm returns before this upgrade's Jobs finish.
  it('a rerun right after a failed install is judged by its own Job, not the stale Failed one', async () => {
    const s = await scenario({ mode: 'job', nodes: 1 })
    s.cluster.kataDeploy.helmWaitsForJobs = false
    s.cluster.kataDeploy.installJobs.set('node-1@3.33.0', 'fail')
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('rolled-back')
    s.cluster.kataDeploy.installJobs.delete('node-1@3.33.0')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-2')
    expect(report.nodes[0]).toMatchObject({ status: 'completed' })
    expect(s.cluster.versionOn('node-1')).toBe('3.33.0')
  })

  it('a node the dispatcher created no Job for is failed as soon as helm returns, the others still judged', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    s.cluster.kataDeploy.installJobs.set('node-1@3.33.0', 'none')
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2, readyTimeoutMs: 300_000 }), 'run-1')
    expect(report.nodes.map((n) => [n.name, n.status])).toEqual([
      ['node-1', 'rolled-back'],
      ['node-2', 'completed'],
    ])
    expect(report.nodes[0]!.error).toBe(
      "kata-deploy's dispatcher created no install Job for node-1 (helm returned, so none will come)",
    )
    const writes = statusWrites(s.cluster, 'node-1')
    // No wait for a Job that cannot come: failed at the moment helm returned (the other node's Job ran 5 s).
    expect(
      writes.find((w) => w.status === 'rolling-back')!.at - writes.find((w) => w.status === 'upgrading')!.at,
    ).toBeLessThan(10_000)
  })

  it('a dispatcher that uninstalls nodes outside job.nodes stops the run before the next wave (exit 4), the wave left cordoned', async () => {
    const s = await scenario({ mode: 'job', nodes: 3 })
    s.cluster.kataDeploy.cleansOutsideJobNodes = true
    const run = upgrade(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1')
    await expect(run).rejects.toMatchObject({
      exitCode: 4,
      message: expect.stringMatching(
        /^kata-deploy 3\.33\.0's install dispatcher removed Kata from node-1, outside job\.nodes \(node-2\): kata-lcm stopped/,
      ),
    })
    expect(s.cluster.node('node-1').annotations[STATUS_ANNOTATION]).toBe('completed')
    expect(s.cluster.node('node-2')).toMatchObject({ unschedulable: true })
    expect(s.cluster.node('node-2').annotations[STATUS_ANNOTATION]).toBe('upgrading')
    expect(s.cluster.writesTo('node-3')).toEqual([])
  })

  it('a failing revert leaves the node failed and cordoned', async () => {
    const s = await scenario({ mode: 'job', nodes: 1 })
    s.cluster.verification.set('node-1', 'fail')
    s.cluster.kataDeploy.installJobs.set('node-1@3.32.0', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(report.outcome).toBe('manual-action')
    expect(s.status('node-1')).toBe('failed')
    expect(s.cluster.node('node-1').unschedulable).toBe(true)
    expect(s.cluster.versionOn('node-1')).toBe('3.33.0')
  })
})

describe('judgeInstallJob', () => {
  const job = (
    name: string,
    node: string,
    outcome: JobView['outcome'],
    created: string,
    message?: string,
  ): JobView => ({
    name,
    namespace: 'kube-system',
    uid: `uid-${name}`,
    labels: {},
    annotations: {},
    outcome,
    creationTimestamp: created,
    targetNode: node,
    images: ['quay.io/kata-containers/kata-deploy:3.33.0'],
    ...(message ? { message } : {}),
  })
  const before = new Set(['uid-stale'])

  it.each<[string, JobView[], ReturnType<typeof judgeInstallJob>]>([
    ['no Job yet', [], undefined],
    ['running', [job('a', 'n1', 'Running', '2025-01-01T00:00:00Z')], undefined],
    ['complete', [job('a', 'n1', 'Complete', '2025-01-01T00:00:00Z')], { ok: true }],
    [
      'failed',
      [job('a', 'n1', 'Failed', '2025-01-01T00:00:00Z', 'BackoffLimitExceeded')],
      { ok: false, reason: 'install Job a for n1 failed: BackoffLimitExceeded' },
    ],
    ['another node', [job('a', 'n2', 'Complete', '2025-01-01T00:00:00Z')], undefined],
    ['a Job that existed before the upgrade', [job('stale', 'n1', 'Complete', '2025-01-01T00:00:00Z')], undefined],
    [
      'the newest Job wins',
      [job('old', 'n1', 'Failed', '2025-01-01T00:00:00Z'), job('new', 'n1', 'Complete', '2025-01-01T00:05:00Z')],
      { ok: true },
    ],
  ])('%s', (_what, jobs, expected) => {
    expect(judgeInstallJob(jobs, 'n1', before)).toEqual(expected)
  })
})

describe("the dispatcher pod of a job-mode wave tolerates the wave's cordon", () => {
  const cordon = { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }
  const reserved = { key: 'reservedFor', operator: 'Equal', value: 'kata', effect: 'NoSchedule' }

  it("4.1.0+: job.dispatcherTolerations, the operator's own (else the top-level ones) and the cordon's", () => {
    expect(dispatcherPlacement({}, '4.1.0')).toEqual({ job: { dispatcherTolerations: [cordon] } })
    expect(dispatcherPlacement({ tolerations: [reserved] }, '4.2.0')).toEqual({
      job: { dispatcherTolerations: [reserved, cordon] },
    })
    expect(dispatcherPlacement({ tolerations: [reserved], job: { dispatcherTolerations: [] } }, '4.1.0')).toEqual({
      job: { dispatcherTolerations: [reserved, cordon] },
    })
    const own = { key: 'dispatcher', operator: 'Exists' }
    expect(dispatcherPlacement({ tolerations: [reserved], job: { dispatcherTolerations: [own] } }, '4.1.0')).toEqual({
      job: { dispatcherTolerations: [own, cordon] },
    })
    // Already tolerated (by key, or by an Exists without a key): nothing set.
    expect(dispatcherPlacement({ tolerations: [cordon] }, '4.1.0')).toEqual({})
    expect(dispatcherPlacement({ tolerations: [{ operator: 'Exists' }] }, '4.1.0')).toEqual({})
  })

  it('before 4.1.0 the dispatcher takes the top-level tolerations: the cordon is added there', () => {
    expect(dispatcherPlacement({}, '4.0.0')).toEqual({ tolerations: [cordon] })
    expect(dispatcherPlacement({ tolerations: [reserved] }, '3.32.0')).toEqual({ tolerations: [reserved, cordon] })
    expect(dispatcherPlacement({ tolerations: [cordon] }, '3.32.0')).toEqual({})
  })

  it("a 4.1.0 wave's helm upgrade carries it as kata-lcm's override; the operator's values come back without it", async () => {
    const s = await scenario({ mode: 'job', nodes: 2, version: '4.0.0', target: '4.1.0' })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('success')
    expect(scoped(s)).toEqual([
      {
        version: '4.1.0',
        job: { nodes: ['node-1', 'node-2'], parallelism: 2, dispatcherTolerations: [cordon] },
        mode: 'job',
        verification: { pod: '' },
      },
    ])
    expect(s.helm.upgradesWith(true)).toEqual([
      expect.objectContaining({ version: '4.1.0', values: { deploymentMode: 'job' } }),
    ])
  })
})
