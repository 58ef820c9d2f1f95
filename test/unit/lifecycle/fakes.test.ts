import { describe, expect, it } from 'vitest'
import { ClusterError, HelmError } from '../../../src/lifecycle/errors.js'
import { FakeClock } from '../../fakes/fake-clock.js'
import { FakeCluster } from '../../fakes/fake-cluster.js'
import { FakeHelm } from '../../fakes/fake-helm.js'
import { CHART, RELEASE, scenario } from '../../fakes/scenario.js'

/** The fakes are only worth something if they behave like the real thing: these pin that down. */

describe('FakeClock', () => {
  it('auto-advances to the next timer only when everything else is idle', async () => {
    const clock = new FakeClock()
    const order: string[] = []
    await Promise.all([
      clock.sleep(5_000).then(() => order.push(`a@${clock.elapsedMs()}`)),
      clock.sleep(1_000).then(() => order.push(`b@${clock.elapsedMs()}`)),
    ])
    expect(order).toEqual(['b@1000', 'a@5000'])
  })

  it('manual mode moves only on advance()', async () => {
    const clock = new FakeClock({ autoAdvance: false })
    let fired = false
    void clock.sleep(1_000).then(() => {
      fired = true
    })
    await clock.advance(999)
    expect(fired).toBe(false)
    await clock.advance(1)
    expect(fired).toBe(true)
  })

  it('an aborted sleep rejects and leaves no timer', async () => {
    const clock = new FakeClock({ autoAdvance: false })
    const abort = new AbortController()
    const sleeping = clock.sleep(1_000, abort.signal)
    abort.abort(new Error('stop'))
    await expect(sleeping).rejects.toThrow('stop')
    expect(clock.pendingTimers()).toBe(0)
  })
})

describe('FakeCluster nodes', () => {
  it('patchNode merges only the given keys, null removes, unschedulable stays as set', async () => {
    const cluster = new FakeCluster(new FakeClock())
    cluster.addNode({ name: 'n', annotations: { keep: '1', drop: '2' } })
    await cluster.patchNode('n', { annotations: { drop: null, add: '3' }, unschedulable: true })
    await cluster.patchNode('n', { annotations: { other: '4' } })
    expect(cluster.node('n')).toMatchObject({ annotations: { keep: '1', add: '3', other: '4' }, unschedulable: true })
    expect(cluster.writes.map((w) => [w.verb, w.resource, w.name])).toEqual([
      ['patch', 'nodes', 'n'],
      ['patch', 'nodes', 'n'],
    ])
  })

  it('patching a missing node is a 404', async () => {
    const cluster = new FakeCluster(new FakeClock())
    await expect(cluster.patchNode('ghost', {})).rejects.toEqual(expect.objectContaining({ status: 404 }))
    await expect(cluster.patchNode('ghost', {})).rejects.toBeInstanceOf(ClusterError)
  })

  it('an invalid label selector is a 400', async () => {
    const cluster = new FakeCluster(new FakeClock())
    await expect(cluster.listNodes('a in b')).rejects.toEqual(expect.objectContaining({ status: 400 }))
  })
})

describe('FakeCluster kata-deploy DaemonSet', () => {
  it('a deleted pod is terminating first, then replaced at the current revision, Ready a tick later', async () => {
    const s = await scenario({ nodes: 1, timings: { terminationMs: 1_000, kataDeployReadyMs: 2_000 } })
    await s.helm.upgrade({
      ...RELEASE,
      release: RELEASE.name,
      chart: CHART,
      version: '3.29.0',
      values: { updateStrategy: { type: 'OnDelete' } },
    })
    const old = s.cluster.kataDeployPodOn('node-1')!
    expect(old.labels['controller-revision-hash']).toBe(s.cluster.revisionHashOf('3.28.0'))
    await s.cluster.deletePod('kube-system', old.name)
    const seen: string[] = []
    const result = await s.cluster.waitForPods(
      { namespace: 'kube-system', labelSelector: 'name=kata-deploy' },
      (pods) => {
        seen.push(
          pods
            .map(
              (p) =>
                `${p.name === old.name ? 'old' : 'new'}:${p.deletionTimestamp ? 'terminating' : p.ready ? 'ready' : 'starting'}`,
            )
            .join(','),
        )
        return pods.some((p) => p.ready && p.labels['controller-revision-hash'] === s.cluster.revisionHashOf('3.29.0'))
          ? true
          : undefined
      },
      60_000,
    )
    expect(result.done).toBe(true)
    expect(seen).toEqual(['old:terminating', '', 'new:starting', 'new:ready'])
    expect(s.clock.elapsedMs()).toBe(3_000)
  })

  it('RollingUpdate replaces every outdated pod at once; OnDelete none', async () => {
    const s = await scenario({ nodes: 2 })
    await s.helm.upgrade({
      release: RELEASE.name,
      namespace: RELEASE.namespace,
      chart: CHART,
      version: '3.29.0',
      values: { updateStrategy: { type: 'OnDelete' } },
    })
    await s.clock.sleep(10_000)
    expect(s.nodeNames.map((n) => s.cluster.versionOn(n))).toEqual(['3.28.0', '3.28.0'])
    await s.helm.upgrade({
      release: RELEASE.name,
      namespace: RELEASE.namespace,
      chart: CHART,
      version: '3.29.0',
      values: {},
    })
    await s.clock.sleep(10_000)
    expect(s.nodeNames.map((n) => s.cluster.versionOn(n))).toEqual(['3.29.0', '3.29.0'])
  })

  it('a crash-looping version never gets Ready', async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.kataDeploy.crashLoopVersions.add('3.29.0')
    await s.helm.upgrade({
      release: RELEASE.name,
      namespace: RELEASE.namespace,
      chart: CHART,
      version: '3.29.0',
      values: {},
    })
    await s.clock.sleep(60_000)
    const pod = s.cluster.kataDeployPodOn('node-1')!
    expect(pod.ready).toBe(false)
    expect(pod.containers[0]).toMatchObject({ state: 'waiting', reason: 'CrashLoopBackOff', restartCount: 3 })
  })
})

describe('FakeCluster waits', () => {
  it('a watch is re-evaluated on changes, not on a timer, and times out on the fake clock', async () => {
    const s = await scenario({ nodes: 1 })
    const calls = s.cluster.store.decideCalls
    const result = await s.cluster.waitForPods({ namespace: 'nowhere' }, () => undefined, 600_000)
    expect(result).toEqual({ done: false, last: [] })
    expect(s.clock.elapsedMs()).toBe(600_000)
    expect(s.cluster.store.decideCalls - calls).toBe(1)
    expect(s.cluster.store.openWatches()).toBe(0)
  })

  it('an eviction blocked by a PDB answers blocked until its budget allows it', async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.addPod({ namespace: 'app', name: 'db', node: 'node-1' })
    s.cluster.evictionBlocks.set('app/db', 1)
    expect(await s.cluster.evictPod('app', 'db')).toBe('blocked')
    expect(await s.cluster.evictPod('app', 'db')).toBe('evicted')
    await s.clock.sleep(5_000)
    expect(await s.cluster.evictPod('app', 'db')).toBe('gone')
  })
})

describe('FakeHelm', () => {
  it('keeps revisions, user values and coalesced values with version-gated chart defaults', async () => {
    const helm = new FakeHelm()
    helm.addChart(CHART, ['3.28.0', '3.32.0'])
    await helm.install({ ...RELEASE, version: '3.28.0', values: { debug: true } })
    expect(await helm.values(RELEASE.name, RELEASE.namespace, { all: true })).not.toHaveProperty('deploymentMode')
    await helm.upgrade({
      release: RELEASE.name,
      namespace: RELEASE.namespace,
      chart: CHART,
      version: '3.32.0',
      values: { job: { nodes: ['n'] } },
    })
    expect(await helm.values(RELEASE.name, RELEASE.namespace, { all: false })).toEqual({ job: { nodes: ['n'] } })
    expect(await helm.values(RELEASE.name, RELEASE.namespace, { all: true })).toMatchObject({
      deploymentMode: 'daemonset',
      job: { nodes: ['n'], parallelism: 100 },
    })
    expect(await helm.values(RELEASE.name, RELEASE.namespace, { all: false, revision: 1 })).toEqual({ debug: true })
    expect(
      (await helm.history(RELEASE.name, RELEASE.namespace)).map((r) => [r.revision, r.status, r.chartVersion]),
    ).toEqual([
      [1, 'superseded', '3.28.0'],
      [2, 'deployed', '3.32.0'],
    ])
  })

  it('an injected failure records a failed revision and throws a HelmError with the argv', async () => {
    const helm = new FakeHelm()
    helm.addChart(CHART, ['3.28.0', '3.29.0'])
    await helm.install({ ...RELEASE, version: '3.28.0' })
    helm.failNextUpgrade({ message: 'UPGRADE FAILED: nope' })
    const error = await helm
      .upgrade({ release: RELEASE.name, namespace: RELEASE.namespace, chart: CHART, version: '3.29.0', values: {} })
      .catch((e: unknown) => e as HelmError)
    expect(error).toBeInstanceOf(HelmError)
    expect(error!.argv.slice(0, 3)).toEqual(['helm', 'upgrade', 'kata-deploy'])
    expect(await helm.release(RELEASE.name, RELEASE.namespace)).toMatchObject({
      status: 'failed',
      chartVersion: '3.29.0',
      revision: 2,
    })
    expect(helm.upgrades).toHaveLength(1)
  })
})
