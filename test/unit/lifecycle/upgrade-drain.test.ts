import { describe, expect, it } from 'vitest'
import { drainNode, isDrainExempt, NO_FORCE } from '../../../src/lifecycle/engine/drain.js'
import { PreconditionError, TimeoutError } from '../../../src/lifecycle/errors.js'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import type { WriteRecord } from '../../fakes/fake-cluster.js'
import { scenario, statusWrites, type Scenario } from '../../fakes/scenario.js'

/** node-1 runs a Deployment pod, a DaemonSet pod, a static pod's mirror and a finished Job pod. */
async function withWorkloads(): Promise<Scenario> {
  const s = await scenario({ nodes: 2 })
  s.cluster.addPod({ namespace: 'shop', name: 'web-0', node: 'node-1' })
  s.cluster.addPod({ namespace: 'shop', name: 'web-1', node: 'node-1' })
  s.cluster.addPod({ namespace: 'kube-system', name: 'kube-proxy-x', node: 'node-1', ownerKinds: ['DaemonSet'] })
  s.cluster.addPod({
    namespace: 'kube-system',
    name: 'etcd-node-1',
    node: 'node-1',
    ownerKinds: ['Node'],
    mirror: true,
  })
  s.cluster.addPod({ namespace: 'batch', name: 'report-x', node: 'node-1', ownerKinds: ['Job'], phase: 'Succeeded' })
  s.cluster.addPod({ namespace: 'shop', name: 'web-2', node: 'node-2' })
  return s
}

const evictions = (s: Scenario) =>
  s.cluster.writes.filter((w) => w.resource === 'pods/eviction').map((w) => `${w.namespace}/${w.name}`)
const names = (s: Scenario, node: string) =>
  s.cluster
    .podsOn(node)
    .filter((p) => p.labels.name !== 'kata-deploy')
    .map((p) => p.name)
    .sort()

/** The write that cordons a node: after it, the preflight is over. */
const cordoned = (w: WriteRecord) => w.resource === 'nodes' && JSON.stringify(w.detail ?? {}).includes('"cordoned"')

describe('drain during upgrade', () => {
  it('evicts workload pods through the Eviction API, skipping DaemonSet, mirror and finished pods', async () => {
    const s = await withWorkloads()
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ drain: true, selection: { labelSelector: 'kubernetes.io/hostname=node-1' } }),
      'run-1',
    )

    expect(report.outcome).toBe('success')
    expect(evictions(s)).toEqual(['shop/web-0', 'shop/web-1'])
    expect(names(s, 'node-1')).toEqual(['etcd-node-1', 'kube-proxy-x', 'report-x'])
    expect(names(s, 'node-2')).toEqual(['web-2'])
    expect(statusWrites(s.cluster, 'node-1').map((w) => w.status)).toEqual([
      'cordoned',
      'draining',
      'upgrading',
      'verifying',
      'completed',
    ])
    // drained while cordoned, before the upgrade
    const draining = statusWrites(s.cluster, 'node-1').find((w) => w.status === 'draining')!
    const firstEviction = s.cluster.writes.find((w) => w.resource === 'pods/eviction')!
    const helmUp = s.cluster.writes.find((w) => w.verb === 'upgrade')!
    expect(firstEviction.seq).toBeGreaterThan(draining.seq)
    expect(helmUp.seq).toBeGreaterThan(firstEviction.seq)
  })

  it('retries a PodDisruptionBudget refusal (429) with backoff until the eviction is allowed', async () => {
    const s = await withWorkloads()
    // A budget that starts refusing after the preflight (another drain used the disruption meanwhile).
    void s.cluster.afterWrite(cordoned, () => s.cluster.evictionBlocks.set('shop/web-0', 2))
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ drain: true, selection: { labelSelector: 'kubernetes.io/hostname=node-1' } }),
      'run-1',
    )
    expect(report.outcome).toBe('success')
    const attempts = s.cluster.writes.filter((w) => w.resource === 'pods/eviction' && w.name === 'web-0')
    expect(attempts).toHaveLength(3)
    // backoff 500ms, then 1s
    expect(attempts[1]!.at - attempts[0]!.at).toBe(500)
    expect(attempts[2]!.at - attempts[1]!.at).toBe(1000)
    expect(names(s, 'node-1')).not.toContain('web-0')
  })

  it('a drain that times out names the blocking pod; the node is put back untouched by helm', async () => {
    const s = await withWorkloads()
    void s.cluster.afterWrite(cordoned, () => s.cluster.evictionBlocks.set('shop/web-1', Infinity))
    const uid = s.cluster.kataDeployPodOn('node-1')!.uid
    const report = await upgrade(s.deps, s.upgradeRequest({ drain: true, drainTimeoutMs: 10_000 }), 'run-1')

    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes[0]!.error).toBe(
      'drain of node-1 timed out: shop/web-1 still on the node (a PodDisruptionBudget refuses their eviction)',
    )
    const n = s.cluster.node('node-1')
    expect(n.annotations[STATUS_ANNOTATION]).toBe('rolled-back')
    expect(n.annotations[Annotation.currentVersion]).toBe('3.28.0')
    expect(n.unschedulable).toBe(false)
    expect(s.cluster.kataDeployPodOn('node-1')!.uid).toBe(uid)
    expect(s.helm.upgrades.some((u) => u.version === '3.29.0')).toBe(false)
    expect(s.cluster.writesTo('node-2')).toEqual([])
  })
})

describe('drain preflight: a PodDisruptionBudget that refuses now', () => {
  it('refuses the wave before any write, naming the pod (a dry-run eviction per pod)', async () => {
    const s = await withWorkloads()
    s.cluster.evictionBlocks.set('shop/web-0', Infinity)
    await expect(upgrade(s.deps, s.upgradeRequest({ drain: true }), 'run-1')).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(
        /^--drain: wave 1 not started, 1 pod\(s\) cannot be evicted safely: shop\/web-0 on node-1: a PodDisruptionBudget refuses its eviction now$/,
      ),
    })
    expect(s.cluster.writes).toEqual([])
    expect(s.cluster.reads).toContain('evictPod:dry-run')
  })
})

describe("drain safety (kubectl drain's rules)", () => {
  async function risky(): Promise<Scenario> {
    const s = await scenario({ nodes: 2 })
    s.cluster.addPod({ namespace: 'shop', name: 'web-0', node: 'node-1' })
    s.cluster.addPod({ namespace: 'shop', name: 'bare', node: 'node-1', ownerKinds: [] })
    s.cluster.addPod({ namespace: 'shop', name: 'cache', node: 'node-2', emptyDirs: ['scratch'] })
    return s
  }

  it('refuses the wave before any write, naming the unmanaged pod and the emptyDir pod', async () => {
    const s = await risky()
    const error = await upgrade(s.deps, s.upgradeRequest({ drain: true, batchSize: 2 }), 'run-1').catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PreconditionError)
    expect((error as Error).message).toMatch(/^--drain: wave 1 not started, 2 pod\(s\) cannot be evicted safely: /)
    expect((error as Error).message).toContain('shop/bare on node-1: no controller manages it')
    expect((error as Error).message).toContain('shop/cache on node-2: its emptyDir data (scratch) would be lost')
    expect(s.cluster.writes).toEqual([])
    expect(evictions(s)).toEqual([])
  })

  it('evicts them when --drain-force and --drain-delete-emptydir-data say so', async () => {
    const s = await risky()
    const report = await upgrade(
      s.deps,
      s.upgradeRequest({ drain: true, batchSize: 2, drainPolicy: { force: true, deleteEmptyDirData: true } }),
      'run-1',
    )
    expect(report.outcome).toBe('success')
    expect(evictions(s).sort()).toEqual(['shop/bare', 'shop/cache', 'shop/web-0'])
  })

  it('each flag lifts only its own rule', async () => {
    const s = await risky()
    const error = await upgrade(
      s.deps,
      s.upgradeRequest({ drain: true, batchSize: 2, drainPolicy: { force: true, deleteEmptyDirData: false } }),
      'run-1',
    ).catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/1 pod\(s\) cannot be evicted safely: shop\/cache on node-2/)
  })
})

describe('drainNode', () => {
  it('waits (watch) for evicted pods to finish terminating', async () => {
    const s = await scenario({ nodes: 1, timings: { terminationMs: 7_000 } })
    s.cluster.addPod({ namespace: 'shop', name: 'slow', node: 'node-1' })
    await drainNode(s.deps, 'node-1', 60_000, NO_FORCE)
    expect(s.clock.elapsedMs()).toBe(7_000)
    expect(s.cluster.podsOn('node-1').map((p) => p.name)).not.toContain('slow')
  })

  it('times out naming pods that do not terminate in time', async () => {
    const s = await scenario({ nodes: 1, timings: { terminationMs: 90_000 } })
    s.cluster.addPod({ namespace: 'shop', name: 'stubborn', node: 'node-1' })
    const error = await drainNode(s.deps, 'node-1', 30_000, NO_FORCE).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TimeoutError)
    expect((error as Error).message).toBe(
      'drain of node-1 timed out: shop/stubborn still on the node (they did not terminate in time)',
    )
    expect(s.clock.elapsedMs()).toBe(30_000)
  })

  it('a pod gone before its eviction is fine', async () => {
    const s = await scenario({ nodes: 1 })
    await expect(drainNode(s.deps, 'node-1', 1_000, NO_FORCE)).resolves.toBeUndefined()
    expect(evictions(s)).toEqual([])
  })

  it.each([
    [{ mirror: true, ownerKinds: [], phase: 'Running' }, true],
    [{ mirror: false, ownerKinds: ['DaemonSet'], phase: 'Running' }, true],
    [{ mirror: false, ownerKinds: ['ReplicaSet'], phase: 'Succeeded' }, true],
    [{ mirror: false, ownerKinds: ['ReplicaSet'], phase: 'Failed' }, true],
    [{ mirror: false, ownerKinds: ['ReplicaSet'], phase: 'Running' }, false],
    [{ mirror: false, ownerKinds: [], phase: 'Pending' }, false],
  ])('isDrainExempt(%j) = %s', (pod, exempt) => {
    expect(
      isDrainExempt({
        name: 'p',
        namespace: 'n',
        uid: 'u',
        labels: {},
        annotations: {},
        ready: true,
        containers: [],
        conditions: [],
        emptyDirs: [],
        ...pod,
      }),
    ).toBe(exempt)
  })
})
