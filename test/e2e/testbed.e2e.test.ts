// Smoke test of the e2e testbed itself: the kwok stages behave as documented in
// test/e2e/testbed/README.md and the audit log records the test's writes.
import { randomBytes } from 'node:crypto'

import { AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AuditLog, describeEvents } from './harness/audit.js'
import { e2eCluster, HARNESS_USER_AGENT, loadKubeConfig } from './harness/cluster.js'
import { createNamespace, deleteNamespace } from './harness/namespaces.js'
import { createFakeNodes, deleteNodes } from './harness/nodes.js'
import { hasCondition, podPhase, waitForList, waitForObject } from './harness/wait.js'

const suffix = randomBytes(2).toString('hex')
const NS = `testbed-smoke-${suffix}`
const OK1 = `tb-ok-1-${suffix}`
const OK2 = `tb-ok-2-${suffix}`
const VFAIL = `vfail-tb-${suffix}`
const JFAIL = `jfail-tb-${suffix}`
const NODES = [OK1, OK2, VFAIL, JFAIL]
const SMOKE_LABEL = 'kata-lcm.test/smoke'

type Pod = V1Pod & { metadata: { name: string } }

function container(image = 'registry.example/busybox:1') {
  return [{ name: 'main', image, command: ['true'] }]
}

function verifyPod(name: string, outcome: string, nodeName?: string): V1Pod {
  return {
    metadata: { name, labels: { 'kata-lcm.test/verify': outcome } },
    spec: {
      restartPolicy: 'Never',
      ...(nodeName ? { nodeName } : { nodeSelector: { 'kubernetes.io/hostname': OK2 } }),
      containers: container(),
    },
  }
}

describe('e2e testbed (kwok stages, audit log)', () => {
  let kc: KubeConfig
  let core: CoreV1Api
  let audit: AuditLog
  let t0: Date

  beforeAll(async () => {
    const cluster = e2eCluster()
    kc = loadKubeConfig(cluster.kubeconfigPath)
    core = kc.makeApiClient(CoreV1Api)
    audit = new AuditLog(cluster.auditLogPath)
    t0 = new Date()
    await createNamespace(kc, NS)
    const nodes = await createFakeNodes(
      kc,
      NODES.map((name) => ({ name, labels: { [SMOKE_LABEL]: 'true' } })),
    )
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual([...NODES].sort())
  })

  afterAll(async () => {
    if (!kc) return
    // Nodes first on purpose: deleteNodes force-deletes the pods left on them,
    // so the namespace goes away quickly anyway.
    await deleteNodes(kc, NODES)
    await deleteNamespace(kc, NS)
  })

  it('makes kwok nodes Ready', async () => {
    const node = await core.readNode({ name: VFAIL })
    expect(hasCondition(node, 'Ready')).toBe(true)
    expect(node.metadata?.annotations?.['kwok.x-k8s.io/node']).toBe('fake')
  })

  it('drives verification pods by label and by node name', async () => {
    const pods: V1Pod[] = [
      verifyPod('v-succeed', 'succeed', OK1),
      verifyPod('v-fail', 'fail', OK1),
      verifyPod('v-pending', 'pending', OK1),
      verifyPod('v-creating', 'creating', OK1),
      verifyPod('v-succeed-on-vfail', 'succeed', VFAIL),
      verifyPod('v-succeed-scheduled', 'succeed'), // bound by kube-scheduler
    ]
    for (const body of pods) await core.createNamespacedPod({ namespace: NS, body })

    const path = `/api/v1/namespaces/${NS}/pods`
    const byName = (objs: Pod[], n: string) => objs.find((p) => p.metadata.name === n)
    const terminated = (p: Pod | undefined) => p?.status?.containerStatuses?.[0]?.state?.terminated
    const waiting = (p: Pod | undefined) => p?.status?.containerStatuses?.[0]?.state?.waiting

    const final = await waitForList<Pod>(
      kc,
      path,
      (objs) =>
        podPhase(byName(objs, 'v-succeed')) === 'Succeeded' &&
        podPhase(byName(objs, 'v-fail')) === 'Failed' &&
        podPhase(byName(objs, 'v-succeed-on-vfail')) === 'Failed' &&
        podPhase(byName(objs, 'v-succeed-scheduled')) === 'Succeeded' &&
        waiting(byName(objs, 'v-creating'))?.reason === 'ContainerCreating',
      60_000,
      { labelSelector: 'kata-lcm.test/verify', description: 'verification pods to reach their outcome' },
    )
    expect(terminated(byName(final, 'v-succeed'))?.exitCode).toBe(0)
    expect(terminated(byName(final, 'v-fail'))?.exitCode).toBe(1)
    expect(terminated(byName(final, 'v-succeed-on-vfail'))?.exitCode).toBe(1)
    expect(byName(final, 'v-succeed-scheduled')?.spec?.nodeName).toBe(OK2)
    expect(podPhase(byName(final, 'v-creating'))).toBe('Pending')

    // "pending" never leaves Pending and gets no container status; give kwok
    // time to (wrongly) act on it: the 1s stages above have all fired by now.
    const pending = await core.readNamespacedPod({ namespace: NS, name: 'v-pending' })
    expect(pending.status?.phase).toBe('Pending')
    expect(pending.status?.containerStatuses ?? []).toHaveLength(0)
    const creating = await core.readNamespacedPod({ namespace: NS, name: 'v-creating' })
    expect(creating.status?.phase).toBe('Pending')
  })

  it('crash-loops kata-deploy pods whose image tag contains "crashloop" and runs the others', async () => {
    const apps = kc.makeApiClient(AppsV1Api)
    const ds = (name: string, image: string) => ({
      metadata: { name },
      spec: {
        selector: { matchLabels: { name: 'kata-deploy', 'kata-lcm.test/ds': name } },
        template: {
          metadata: { labels: { name: 'kata-deploy', 'kata-lcm.test/ds': name } },
          spec: { nodeSelector: { [SMOKE_LABEL]: 'true' }, containers: container(image) },
        },
      },
    })
    await apps.createNamespacedDaemonSet({
      namespace: NS,
      body: ds('kd-good', 'quay.io/kata-containers/kata-deploy:3.30.0'),
    })
    await apps.createNamespacedDaemonSet({
      namespace: NS,
      body: ds('kd-crash', 'quay.io/kata-containers/kata-deploy:3.30.0-crashloop'),
    })

    const good = await waitForObject(
      kc,
      `/apis/apps/v1/namespaces/${NS}/daemonsets`,
      'kd-good',
      (d) => {
        const s = (d as { status?: { numberReady?: number; desiredNumberScheduled?: number } }).status
        return s?.desiredNumberScheduled === NODES.length && s.numberReady === NODES.length
      },
      60_000,
    )
    expect(good.metadata?.name).toBe('kd-good')

    const crashPods = await waitForList<Pod>(
      kc,
      `/api/v1/namespaces/${NS}/pods`,
      (objs) =>
        objs.length === NODES.length &&
        objs.every((p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff'),
      60_000,
      { labelSelector: 'kata-lcm.test/ds=kd-crash', description: 'kd-crash pods in CrashLoopBackOff' },
    )
    for (const p of crashPods) {
      const cs = p.status?.containerStatuses?.[0]
      expect(cs?.ready).toBe(false)
      expect(cs?.restartCount ?? 0).toBeGreaterThan(0)
      expect(hasCondition(p, 'Ready', 'False')).toBe(true)
      expect(p.status?.phase).toBe('Running')
    }
    const crash = await apps.readNamespacedDaemonSet({ namespace: NS, name: 'kd-crash' })
    expect(crash.status?.numberReady ?? 0).toBe(0)
  })

  it('completes Jobs, and fails "jobfail" Jobs targeting jfail- nodes', async () => {
    const batch = kc.makeApiClient(BatchV1Api)
    const job = (name: string, target: string, byLabel: boolean, image: string): V1Job => ({
      metadata: { name },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels: byLabel ? { 'kata-lcm.test/target-node': target } : {} },
          spec: {
            restartPolicy: 'Never',
            // byLabel: runs on an OK node, the label names the target
            ...(byLabel ? { nodeSelector: { 'kubernetes.io/hostname': OK1 } } : { nodeName: target }),
            containers: container(image),
          },
        },
      },
    })
    const good = 'quay.io/kata-containers/kata-deploy:3.30.0'
    const broken = 'quay.io/kata-containers/kata-deploy:3.34.0-jobfail'
    await batch.createNamespacedJob({ namespace: NS, body: job('job-ok', OK2, false, broken) })
    await batch.createNamespacedJob({ namespace: NS, body: job('job-ok-on-jfail', JFAIL, false, good) })
    await batch.createNamespacedJob({ namespace: NS, body: job('job-fail-node', JFAIL, false, broken) })
    await batch.createNamespacedJob({ namespace: NS, body: job('job-fail-label', JFAIL, true, broken) })

    const expected: Record<string, string> = {
      'job-ok': 'Complete',
      'job-ok-on-jfail': 'Complete',
      'job-fail-node': 'Failed',
      'job-fail-label': 'Failed',
    }
    const jobs = await waitForList(
      kc,
      `/apis/batch/v1/namespaces/${NS}/jobs`,
      (objs) =>
        Object.entries(expected).every(([n, c]) =>
          hasCondition(
            objs.find((o) => o.metadata?.name === n),
            c,
          ),
        ),
      90_000,
      { description: 'jobs to finish' },
    )
    expect(jobs).toHaveLength(4)
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name' })
    const exit = (jobName: string) =>
      pods.items.find((p) => p.metadata?.labels?.['job-name'] === jobName)?.status?.containerStatuses?.[0]?.state
        ?.terminated?.exitCode
    expect(exit('job-ok')).toBe(0)
    expect(exit('job-ok-on-jfail')).toBe(0)
    expect(exit('job-fail-node')).toBe(1)
    expect(exit('job-fail-label')).toBe(1)
  })

  it('records the test writes in the audit log', async () => {
    await audit.barrier(kc)
    const mine = { userAgentPrefix: HARNESS_USER_AGENT }
    const counts = await audit.countByVerb({ ...mine, since: t0 })
    expect(counts['create'] ?? 0).toBeGreaterThanOrEqual(1 + NODES.length + 6 + 2 + 4)
    const podCreates = await audit.writesSince(t0, { ...mine, resource: 'pods', namespace: NS })
    expect(podCreates.map((e) => e.objectRef?.name).sort(), describeEvents(podCreates)).toEqual([
      'v-creating',
      'v-fail',
      'v-pending',
      'v-succeed',
      'v-succeed-on-vfail',
      'v-succeed-scheduled',
    ])
    const nodeCreates = await audit.writesSince(t0, { ...mine, resource: 'nodes' })
    expect(nodeCreates.filter((e) => e.verb === 'create')).toHaveLength(NODES.length)
    // the controllers wrote too (kwok status patches, job controller), under other user agents
    const others = (await audit.writesSince(t0, { namespace: NS, resource: 'pods', subresource: 'status' })).filter(
      (e) => !(e.userAgent ?? '').startsWith(HARNESS_USER_AGENT),
    )
    expect(others.length).toBeGreaterThan(0)
    // and nothing with a user agent nobody uses
    expect(await audit.writesSince(t0, { userAgentPrefix: 'no-such-agent/' })).toHaveLength(0)
  })
})
