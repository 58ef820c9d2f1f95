/**
 * KubeCluster against the real API server of the e2e testbed (kwok nodes, real controllers):
 * merge patches that keep foreign keys, Events, watches that see changes after they started and
 * time out on time, DaemonSet revisions, PDB-blocked evictions, Jobs, error mapping.
 */
import { randomBytes } from 'node:crypto'
import { execa } from 'execa'
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  PolicyV1Api,
  BatchV1Api,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KubeCluster } from '../../../src/adapters/kube-cluster.adapter.js'
import { createKubeConfig, defaultUserAgent } from '../../../src/adapters/kube-config.js'
import { ClusterError } from '../../../src/lifecycle/errors.js'
import type { PodView } from '../../../src/ports/cluster.port.js'
import { AuditLog, describeEvents } from '../harness/audit.js'
import { e2eCluster, loadKubeConfig } from '../harness/cluster.js'
import { createFakeNodes, deleteNodes } from '../harness/nodes.js'
import { waitForObject } from '../harness/wait.js'

const id = randomBytes(3).toString('hex')
const NS = `adapters-${id}`
const NODE = `ad-${id}-a`
const PLAIN_NODE = `ad-${id}-b`
const GROUP_LABEL = 'kata-lcm.test/adapters'

function pod(name: string, labels: Record<string, string>, nodeName = PLAIN_NODE): V1Pod {
  return {
    metadata: { name, labels },
    spec: { nodeName, restartPolicy: 'Never', containers: [{ name: 'main', image: 'registry.example/busybox:1' }] },
  }
}

describe('KubeCluster (real API server)', () => {
  let harness: KubeConfig
  let core: CoreV1Api
  let apps: AppsV1Api
  let cluster: KubeCluster
  let audit: AuditLog
  let kubeconfigPath: string

  beforeAll(async () => {
    const e2e = e2eCluster()
    kubeconfigPath = e2e.kubeconfigPath
    harness = loadKubeConfig(kubeconfigPath)
    core = harness.makeApiClient(CoreV1Api)
    apps = harness.makeApiClient(AppsV1Api)
    audit = new AuditLog(e2e.auditLogPath)
    cluster = new KubeCluster(createKubeConfig({ kubeconfig: kubeconfigPath }))
    await core.createNamespace({ body: { metadata: { name: NS } } })
    await waitForObject(harness, `/api/v1/namespaces/${NS}/serviceaccounts`, 'default', () => true, 30_000)
    await createFakeNodes(harness, [
      {
        name: NODE,
        labels: { [GROUP_LABEL]: id, 'foreign.example/label': 'keep' },
        annotations: { 'foreign.example/annotation': 'keep' },
        taints: [{ key: 'foreign.example/taint', value: 'keep', effect: 'NoSchedule' }],
      },
      { name: PLAIN_NODE, labels: { [GROUP_LABEL]: id } },
    ])
  })

  afterAll(async () => {
    await core?.deleteNamespace({ name: NS }).catch(() => undefined)
    if (harness) await deleteNodes(harness, [NODE, PLAIN_NODE]).catch(() => undefined)
  })

  it('pings, lists and reads nodes', async () => {
    await cluster.ping()
    const nodes = await cluster.listNodes(`${GROUP_LABEL}=${id}`)
    expect(nodes.map((n) => n.name)).toEqual([NODE, PLAIN_NODE])
    const node = await cluster.getNode(NODE)
    expect(node?.labels['foreign.example/label']).toBe('keep')
    expect(node?.taints).toContainEqual({ key: 'foreign.example/taint', value: 'keep', effect: 'NoSchedule' })
    expect(await cluster.getNode(`missing-${id}`)).toBeUndefined()
  })

  it('merge-patches only its own annotations and unschedulable, in one request with its user agent', async () => {
    const t0 = new Date()
    const cordoned = await cluster.patchNode(NODE, {
      annotations: {
        'katacontainers.io/kata-lifecycle-manager-status': 'cordoned',
        'katacontainers.io/kata-lcm-run': 'r1',
      },
      unschedulable: true,
    })
    expect(cordoned.unschedulable).toBe(true)
    expect(cordoned.annotations).toMatchObject({
      'foreign.example/annotation': 'keep',
      'katacontainers.io/kata-lifecycle-manager-status': 'cordoned',
      'katacontainers.io/kata-lcm-run': 'r1',
    })
    expect(cordoned.labels['foreign.example/label']).toBe('keep')
    expect(cordoned.taints).toContainEqual({ key: 'foreign.example/taint', value: 'keep', effect: 'NoSchedule' })

    // Someone else writes an annotation between our patches: it must survive the next one.
    await core.patchNode({
      name: NODE,
      body: [{ op: 'add', path: '/metadata/annotations/foreign.example~1late', value: 'later' }],
    })

    const uncordoned = await cluster.patchNode(NODE, {
      annotations: {
        'katacontainers.io/kata-lcm-run': null,
        'katacontainers.io/kata-lifecycle-manager-status': 'completed',
      },
      unschedulable: false,
    })
    expect(uncordoned.unschedulable).toBe(false)
    expect(uncordoned.annotations['katacontainers.io/kata-lcm-run']).toBeUndefined()
    expect(uncordoned.annotations).toMatchObject({
      'foreign.example/annotation': 'keep',
      'foreign.example/late': 'later',
      'katacontainers.io/kata-lifecycle-manager-status': 'completed',
    })
    expect(uncordoned.labels['foreign.example/label']).toBe('keep')
    expect(uncordoned.taints).toContainEqual({ key: 'foreign.example/taint', value: 'keep', effect: 'NoSchedule' })
    const fresh = await core.readNode({ name: NODE })
    expect(fresh.spec?.unschedulable ?? false).toBe(false)

    // Idempotent: the same patch again changes nothing.
    const again = await cluster.patchNode(NODE, {
      annotations: { 'katacontainers.io/kata-lcm-run': null },
      unschedulable: false,
    })
    expect(again.annotations).toEqual(uncordoned.annotations)

    await audit.barrier(harness)
    const ours = await audit.find({ since: t0, userAgentPrefix: 'kata-lcm/', resource: 'nodes', name: NODE })
    expect(
      ours.map((e) => e.verb),
      describeEvents(ours),
    ).toEqual(['patch', 'patch', 'patch'])
    expect(ours[0]?.userAgent).toBe(defaultUserAgent())
    expect(ours.every((e) => e.responseStatus?.code === 200)).toBe(true)
  })

  it('records Events that `kubectl describe node` shows', async () => {
    const node = (await cluster.getNode(NODE))!
    await cluster.recordNodeEvent(node, {
      reason: 'KataUpgradeStarted',
      message: `upgrading kata on ${NODE} (${id})`,
      type: 'Normal',
    })
    await cluster.recordNodeEvent(node, {
      reason: 'KataUpgradeFailed',
      message: 'verification failed',
      type: 'Warning',
    })
    const events = await core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: `involvedObject.name=${NODE}`,
    })
    const ours = events.items.filter((e) => e.source?.component === 'kata-lcm')
    // Listed by (generated) name, not by time: compare sorted by reason.
    const seen = ours
      .map((e) => [e.reason, e.type, e.involvedObject.kind, e.involvedObject.uid, e.reportingComponent])
      .sort()
    expect(seen).toEqual([
      ['KataUpgradeFailed', 'Warning', 'Node', node.uid, 'kata-lcm'],
      ['KataUpgradeStarted', 'Normal', 'Node', node.uid, 'kata-lcm'],
    ])
    const described = await execa('kubectl', ['--kubeconfig', kubeconfigPath, 'describe', 'node', NODE])
    expect(described.stdout).toMatch(/Normal\s+KataUpgradeStarted\s+\S+\s+kata-lcm(, \S+)?\s+upgrading kata on/)
    expect(described.stdout).toMatch(/Warning\s+KataUpgradeFailed\s+\S+\s+kata-lcm(, \S+)?\s+verification failed/)
  })

  it('waitForNodes sees a node change made after the wait started (the soak watches its nodes)', async () => {
    const seen: string[][] = []
    let patched: Promise<unknown> | undefined
    const result = await cluster.waitForNodes(
      `${GROUP_LABEL}=${id}`,
      (nodes) => {
        seen.push(nodes.map((n) => n.name))
        // The first view is the list: only now change the node, so only the watch can see it.
        patched ??= core.patchNode(
          { name: PLAIN_NODE, body: { metadata: { labels: { 'kata-lcm.test/soak': id } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )
        return nodes.find((n) => n.name === PLAIN_NODE && n.labels['kata-lcm.test/soak'] === id)
      },
      60_000,
    )
    await patched
    expect(seen[0]).toEqual([NODE, PLAIN_NODE])
    expect(result.done && result.value.name).toBe(PLAIN_NODE)
  })

  it('waitForPods sees a pod created after the wait started', async () => {
    const calls: PodView[][] = []
    let created: Promise<unknown> | undefined
    const started = Date.now()
    const result = await cluster.waitForPods(
      { namespace: NS, labelSelector: 'app=late' },
      (pods) => {
        calls.push(pods)
        // The initial list is empty: only now create the pod, so only the watch can see it.
        created ??= core.createNamespacedPod({ namespace: NS, body: pod('late', { app: 'late' }) })
        return pods.find((p) => p.ready)
      },
      60_000,
    )
    await created
    expect(calls[0]).toEqual([])
    expect(result.done).toBe(true)
    if (!result.done) return
    expect(result.value).toMatchObject({
      name: 'late',
      namespace: NS,
      nodeName: PLAIN_NODE,
      phase: 'Running',
      ready: true,
      mirror: false,
      ownerKinds: [],
    })
    expect(result.value.containers).toEqual([
      expect.objectContaining({ name: 'main', ready: true, state: 'running', restartCount: 0 }),
    ])
    expect(calls.length).toBeGreaterThan(2)
    expect(Date.now() - started).toBeLessThan(30_000)
  })

  it('lists in pages of 500: 1,201 pods come back whole from three requests, and a watch starts from that list', async () => {
    // Pending pods of a scheduler that does not exist: nothing acts on them, so they cost the test bed nothing.
    const labels = { app: 'paged', run: id }
    const names = Array.from({ length: 1201 }, (_, i) => `paged-${String(i).padStart(4, '0')}`)
    const body = (name: string): V1Pod => ({
      metadata: { name, labels },
      spec: { schedulerName: `none-${id}`, containers: [{ name: 'main', image: 'registry.example/busybox:1' }] },
    })
    for (let i = 0; i < names.length; i += 50)
      await Promise.all(
        names.slice(i, i + 50).map((name) => core.createNamespacedPod({ namespace: NS, body: body(name) })),
      )
    const since = new Date()
    const query = { namespace: NS, labelSelector: `app=paged,run=${id}` }
    const listed = await cluster.listPods(query)
    expect(listed.map((p) => p.name)).toEqual(names)
    const lists = await audit.find({
      since,
      userAgentPrefix: 'kata-lcm/',
      verbs: ['list'],
      resource: 'pods',
      namespace: NS,
    })
    expect(lists).toHaveLength(3)
    expect(lists.every((e) => /[?&]limit=500\b/.test(e.requestURI))).toBe(true)
    expect(lists.filter((e) => /[?&]continue=/.test(e.requestURI))).toHaveLength(2)
    // The watch after a paged list: it saw every listed pod, and sees one created after it started.
    let late: Promise<unknown> | undefined
    const result = await cluster.waitForPods(
      query,
      (pods) => {
        late ??= core.createNamespacedPod({ namespace: NS, body: body('paged-late') })
        return pods.length === names.length + 1 ? pods.length : undefined
      },
      60_000,
    )
    await late
    expect(result).toMatchObject({ done: true, value: 1202 })
  })

  it('while keepWatches holds, the waits on one collection share one list and one watch; released, it closes', async () => {
    const labels = { app: 'shared', run: id }
    const query = { namespace: NS, labelSelector: `app=shared,run=${id}` }
    const since = new Date()
    const release = cluster.keepWatches()
    // First wait: the list and the watch; it ends once a pod created after it started is seen.
    const first = cluster.waitForPods(
      query,
      (pods) => (pods.some((p) => p.name === 'shared-1') ? true : undefined),
      30_000,
    )
    await core.createNamespacedPod({ namespace: NS, body: pod('shared-1', labels) })
    expect(await first).toEqual({ done: true, value: true })
    // Second and third waits, one after the other as waves are: decided on the pods as the watch
    // has them (shared-1 at once), then on its events (shared-2), with no new list or watch.
    expect(await cluster.waitForPods(query, (pods) => pods.length || undefined, 30_000)).toEqual({
      done: true,
      value: 1,
    })
    const third = cluster.waitForPods(
      query,
      (pods) => (pods.length === 2 ? pods.map((p) => p.name) : undefined),
      30_000,
    )
    await core.createNamespacedPod({ namespace: NS, body: pod('shared-2', labels) })
    expect(await third).toEqual({ done: true, value: ['shared-1', 'shared-2'] })
    // A wait that times out on the shared watch still says what it saw last.
    const late = await cluster.waitForPods(query, () => undefined, 500)
    expect(late.done === false && late.last.map((p) => p.name)).toEqual(['shared-1', 'shared-2'])
    release()
    await audit.barrier(harness)
    const reads = { since, userAgentPrefix: 'kata-lcm/', resource: 'pods', namespace: NS }
    expect(await audit.find({ ...reads, verbs: ['list'] })).toHaveLength(1)
    // A watch is logged when its response starts (and again when it ends).
    expect(await audit.find({ ...reads, verbs: ['watch'], stage: 'ResponseStarted' })).toHaveLength(1)
    // Released: the next wait lists and watches anew (its own), and sees both pods.
    expect(await cluster.waitForPods(query, (pods) => pods.length || undefined, 30_000)).toEqual({
      done: true,
      value: 2,
    })
    await audit.barrier(harness)
    expect(await audit.find({ ...reads, verbs: ['list'] })).toHaveLength(2)
  })

  it('waitForPods times out with the last state, and aborts on a signal', async () => {
    const t0 = Date.now()
    const result = await cluster.waitForPods(
      { namespace: NS, labelSelector: 'app=late' },
      (pods) => (pods.some((p) => p.phase === 'Failed') ? true : undefined),
      1500,
    )
    const elapsed = Date.now() - t0
    expect(result.done).toBe(false)
    if (!result.done) expect(result.last.map((p) => p.name)).toEqual(['late'])
    expect(elapsed).toBeGreaterThanOrEqual(1450)
    expect(elapsed).toBeLessThan(5000)

    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('stop now')), 300)
    const t1 = Date.now()
    await expect(cluster.waitForPods({ namespace: NS }, () => undefined, 60_000, controller.signal)).rejects.toThrow(
      'stop now',
    )
    expect(Date.now() - t1).toBeLessThan(3000)
  })

  it('leaves no watch open: a process that waited exits on its own', async () => {
    const script = `
      import { KubeCluster } from ${JSON.stringify(new URL('../../../src/adapters/kube-cluster.adapter.ts', import.meta.url).pathname)}
      import { createKubeConfig } from ${JSON.stringify(new URL('../../../src/adapters/kube-config.ts', import.meta.url).pathname)}
      const cluster = new KubeCluster(createKubeConfig({ kubeconfig: ${JSON.stringify(kubeconfigPath)} }))
      const a = await cluster.waitForPods({ namespace: ${JSON.stringify(NS)} }, (pods) => (pods.length > 0 ? 'seen' : undefined), 10000)
      const b = await cluster.waitForPods({ namespace: ${JSON.stringify(NS)}, labelSelector: 'app=none' }, () => undefined, 1000)
      console.log(JSON.stringify([a.done, b.done]))
    `
    const t0 = Date.now()
    const child = await execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 30_000,
      reject: false,
      cwd: new URL('../../..', import.meta.url).pathname,
    })
    expect(child.stderr).toBe('')
    expect(child.stdout.trim()).toBe('[true,false]')
    expect(child.timedOut).toBe(false)
    expect(Date.now() - t0).toBeLessThan(20_000)
  })

  it('daemonSetRevisionHash follows template updates', async () => {
    const name = 'kata-deploy'
    await apps.createNamespacedDaemonSet({
      namespace: NS,
      body: {
        metadata: { name, labels: { name } },
        spec: {
          selector: { matchLabels: { name } },
          updateStrategy: { type: 'OnDelete' },
          template: {
            metadata: { labels: { name } },
            spec: {
              nodeSelector: { 'kubernetes.io/hostname': PLAIN_NODE },
              containers: [{ name: 'kube-kata', image: 'quay.io/kata-containers/kata-deploy:3.28.0' }],
            },
          },
        },
      },
    })
    const first = await cluster.daemonSetRevisionHash(NS, name, 60_000)
    expect(first).toMatch(/^[a-z0-9]+$/)
    const onNode = await cluster.waitForPods(
      { namespace: NS, labelSelector: `name=${name}` },
      (pods) => pods.find((p) => p.ready),
      60_000,
    )
    expect(onNode.done && onNode.value.labels['controller-revision-hash']).toBe(first)
    expect(onNode.done && onNode.value.ownerKinds).toEqual(['DaemonSet'])

    await apps.patchNamespacedDaemonSet({
      namespace: NS,
      name,
      body: [
        {
          op: 'replace',
          path: '/spec/template/spec/containers/0/image',
          value: 'quay.io/kata-containers/kata-deploy:3.32.0',
        },
      ],
    })
    const second = await cluster.daemonSetRevisionHash(NS, name, 60_000)
    expect(second).not.toBe(first)
    const ds = await cluster.getDaemonSet(NS, name)
    expect(ds).toMatchObject({
      name,
      namespace: NS,
      updateStrategy: 'OnDelete',
    })
    expect(ds!.observedGeneration).toBeGreaterThanOrEqual(ds!.generation)
    expect(await cluster.getDaemonSet(NS, 'missing')).toBeUndefined()
    await expect(cluster.daemonSetRevisionHash(NS, 'missing', 5000)).rejects.toBeInstanceOf(ClusterError)
  })

  it('evictPod: blocked by a PodDisruptionBudget, evicted without one, gone when missing', async () => {
    const policy = harness.makeApiClient(PolicyV1Api)
    await core.createNamespacedPod({ namespace: NS, body: pod('guarded', { app: 'guarded' }) })
    await core.createNamespacedPod({ namespace: NS, body: pod('free', { app: 'free' }) })
    await policy.createNamespacedPodDisruptionBudget({
      namespace: NS,
      body: { metadata: { name: 'guarded' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'guarded' } } } },
    })
    await cluster.waitForPods(
      { namespace: NS, labelSelector: 'app in (guarded,free)' },
      (pods) => (pods.length === 2 && pods.every((p) => p.ready) ? true : undefined),
      60_000,
    )
    // Once the disruption controller computed the budget the answer is stable: no disruption allowed.
    await waitForObject(
      harness,
      `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`,
      'guarded',
      (o) => (o as { status?: { currentHealthy?: number } }).status?.currentHealthy === 1,
      60_000,
    )

    expect(await cluster.evictPod(NS, 'guarded')).toBe('blocked')
    expect(await cluster.evictPod(NS, 'free')).toBe('evicted')
    expect(await cluster.evictPod(NS, `missing-${id}`)).toBe('gone')
    const gone = await cluster.waitForPods(
      { namespace: NS, fieldSelector: 'metadata.name=free' },
      (pods) => (pods.length === 0 ? true : undefined),
      60_000,
    )
    expect(gone.done).toBe(true)
    expect((await cluster.listPods({ namespace: NS, labelSelector: 'app=guarded' })).map((p) => p.name)).toEqual([
      'guarded',
    ])
  })

  it('podDiagnostics reports Events and never throws', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'verify', labels: { 'kata-lcm.test/verify': 'fail' } },
        spec: {
          restartPolicy: 'Never',
          nodeSelector: { 'kubernetes.io/hostname': PLAIN_NODE },
          containers: [{ name: 'main', image: 'registry.example/busybox:1' }],
        },
      },
    })
    const failed = await cluster.waitForPods(
      { namespace: NS, fieldSelector: 'metadata.name=verify' },
      ([p]) => (p?.phase === 'Failed' ? p : undefined),
      60_000,
    )
    expect(failed.done).toBe(true)
    if (failed.done) expect(failed.value.containers[0]).toMatchObject({ state: 'terminated', exitCode: 1 })
    const diag = await cluster.podDiagnostics(NS, 'verify', 20)
    expect(
      diag.events.some((e) => /^Scheduled: Successfully assigned/.test(e)),
      diag.events.join('\n'),
    ).toBe(true)
    // kwok serves no logs: left out, not an error.
    expect(Array.isArray(diag.logTail)).toBe(true)
    expect(await cluster.podDiagnostics(NS, `missing-${id}`, 20)).toEqual({ events: [], logTail: [] })
  })

  it('waitForJobs reports Complete and Failed Jobs, with their target node and images', async () => {
    const batch = harness.makeApiClient(BatchV1Api)
    const job = (name: string, target: string, image: string) => ({
      metadata: { name, labels: { suite: id } },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels: { 'kata-lcm.test/target-node': target } },
          spec: { nodeName: PLAIN_NODE, restartPolicy: 'Never', containers: [{ name: 'install', image }] },
        },
      },
    })
    const result = cluster.waitForJobs(
      NS,
      `suite=${id}`,
      (jobs) => (jobs.length === 2 && jobs.every((j) => j.outcome !== 'Running') ? jobs : undefined),
      90_000,
    )
    // the test bed fails install Jobs for jfail-* nodes whose image contains "jobfail"
    await batch.createNamespacedJob({
      namespace: NS,
      body: job('install-ok', PLAIN_NODE, 'quay.io/kata-containers/kata-deploy:3.33.0'),
    })
    await batch.createNamespacedJob({
      namespace: NS,
      body: job('install-bad', `jfail-${id}`, 'quay.io/kata-containers/kata-deploy:3.34.0-jobfail'),
    })
    const done = await result
    expect(done.done).toBe(true)
    if (!done.done) return
    // a wait hands over the Jobs in list-then-arrival order; compare by name
    const byName = [...done.value].sort((a, b) => a.name.localeCompare(b.name))
    expect(byName.map((j) => [j.name, j.outcome, j.targetNode, j.images])).toEqual([
      ['install-bad', 'Failed', PLAIN_NODE, ['quay.io/kata-containers/kata-deploy:3.34.0-jobfail']],
      ['install-ok', 'Complete', PLAIN_NODE, ['quay.io/kata-containers/kata-deploy:3.33.0']],
    ])
    expect(byName[0]?.message).toBeTruthy()
    expect((await cluster.listJobs(NS, `suite=${id}`)).map((j) => j.outcome)).toEqual(['Failed', 'Complete'])
  })

  it('maps a 403 to a ClusterError naming the RBAC rule', async () => {
    const kc = createKubeConfig({ kubeconfig: kubeconfigPath })
    const restricted = new KubeConfig()
    restricted.loadFromOptions({
      clusters: kc.getClusters(),
      contexts: kc.getContexts(),
      currentContext: kc.getCurrentContext(),
      users: kc.getUsers().map((u) => ({ ...u, impersonateUser: `system:serviceaccount:${NS}:nobody` })),
    })
    const error = await new KubeCluster(restricted).listNodes().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ClusterError)
    const e = error as ClusterError
    expect(e.status).toBe(403)
    expect(e.message).toMatch(
      /^list nodes failed: HTTP 403: nodes is forbidden: User "system:serviceaccount:.*:nobody" cannot list resource "nodes"/,
    )
    expect(e.suggestions[0]).toContain('RBAC must allow verb "list" on "nodes"')
  })
})
