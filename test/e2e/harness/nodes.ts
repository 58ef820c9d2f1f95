// Fake nodes: plain Node objects that kwok manages (annotation
// kwok.x-k8s.io/node=fake) and makes Ready (stages/00-node.yaml).
// Name conventions with a meaning to the stages (test/e2e/testbed/README.md):
//   vfail-*  verification pods on the node fail (exit 1)
//   jfail-*  Job pods targeting the node fail (exit 1)
import { createHash } from 'node:crypto'
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1Taint,
} from '@kubernetes/client-node'

import { hasCondition, waitForList } from './wait.js'

export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node'
/** Label on every node this harness creates (handy for cleanup). */
export const FAKE_NODE_LABEL = 'kata-lcm.test/fake-node'

export interface FakeNodeSpec {
  name: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  taints?: V1Taint[]
  unschedulable?: boolean
  /**
   * `status.nodeInfo.machineID` (what /etc/machine-id says on a real node): default one derived from
   * the name; `''` for none. kata-deploy's dispatcher refuses a node without one (4.1.0+).
   */
  machineID?: string
}

function statusCode(e: unknown): number | undefined {
  const err = e as { code?: unknown; statusCode?: unknown }
  if (typeof err.code === 'number') return err.code
  if (typeof err.statusCode === 'number') return err.statusCode
  return undefined
}

export function fakeNode(spec: FakeNodeSpec): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', ...spec.annotations },
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        [FAKE_NODE_LABEL]: 'true',
        ...spec.labels,
      },
    },
    spec: {
      ...(spec.taints ? { taints: spec.taints } : {}),
      ...(spec.unschedulable ? { unschedulable: true } : {}),
    },
    // A node's status may be written on create (the kubelet registers its node so); kwok keeps nodeInfo.
    status: {
      nodeInfo: {
        machineID: spec.machineID ?? createHash('md5').update(spec.name).digest('hex'),
        // Empty: kwok's node stage fills each in.
        architecture: '',
        bootID: '',
        containerRuntimeVersion: '',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: '',
        operatingSystem: '',
        osImage: '',
        systemUUID: '',
      },
    },
  }
}

/**
 * Create the nodes and wait (by watch) until kwok reports every one Ready.
 * A node that already exists is replaced by a fresh one.
 */
export async function createFakeNodes(kc: KubeConfig, specs: FakeNodeSpec[], timeoutMs = 60_000): Promise<V1Node[]> {
  const core = kc.makeApiClient(CoreV1Api)
  const names = new Set(specs.map((s) => s.name))
  if (names.size !== specs.length) throw new Error('createFakeNodes: duplicate node names')
  for (const spec of specs) {
    try {
      await core.createNode({ body: fakeNode(spec) })
    } catch (e) {
      if (statusCode(e) !== 409) throw e
      await deleteNodes(kc, [spec.name], timeoutMs)
      await core.createNode({ body: fakeNode(spec) })
    }
  }
  const ready = await waitForList<V1Node>(
    kc,
    '/api/v1/nodes',
    (nodes) => [...names].every((n) => nodes.some((o) => o.metadata?.name === n && hasCondition(o, 'Ready'))),
    timeoutMs,
    { description: `nodes ${[...names].join(', ')} Ready` },
  )
  return ready.filter((n) => names.has(n.metadata?.name ?? ''))
}

/**
 * Delete nodes (missing ones are fine) and wait until they are gone. Then the
 * pods still bound to them are force-deleted (grace 0): kwok only finishes the
 * deletion of pods whose node exists, and the pod GC would take ~40s.
 */
export async function deleteNodes(kc: KubeConfig, names: string[], timeoutMs = 60_000): Promise<void> {
  if (names.length === 0) return
  const core = kc.makeApiClient(CoreV1Api)
  for (const name of names) {
    try {
      await core.deleteNode({ name })
    } catch (e) {
      if (statusCode(e) !== 404) throw e
    }
  }
  const gone = new Set(names)
  await waitForList(kc, '/api/v1/nodes', (nodes) => !nodes.some((n) => gone.has(n.metadata?.name ?? '')), timeoutMs, {
    description: `nodes ${names.join(', ')} deleted`,
  })
  for (const name of names) {
    const pods = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` })
    for (const pod of pods.items) {
      const ns = pod.metadata?.namespace
      const podName = pod.metadata?.name
      if (!ns || !podName) continue
      try {
        await core.deleteNamespacedPod({ namespace: ns, name: podName, gracePeriodSeconds: 0 })
      } catch (e) {
        if (statusCode(e) !== 404) throw e
      }
    }
  }
}

/** Delete every node created by createFakeNodes. */
export async function deleteAllFakeNodes(kc: KubeConfig, timeoutMs = 60_000): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api)
  const list = await core.listNode({ labelSelector: `${FAKE_NODE_LABEL}=true` })
  await deleteNodes(
    kc,
    list.items.map((n) => n.metadata?.name ?? '').filter((n) => n !== ''),
    timeoutMs,
  )
}

/**
 * Takes a fake node down for good: annotated so kwok's node-initialize stage leaves it alone, then its
 * Ready condition written False through the status subresource.
 */
export async function makeNotReady(kc: KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api)
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
  await core.patchNode({ name, body: { metadata: { annotations: { 'kata-lcm.test/not-ready': 'true' } } } }, merge)
  const node = await core.readNodeStatus({ name })
  const now = new Date()
  const conditions = (node.status?.conditions ?? []).map((c) =>
    c.type === 'Ready'
      ? { ...c, status: 'False', reason: 'KubeletNotReady', message: 'test: node down', lastTransitionTime: now }
      : c,
  )
  await core.replaceNodeStatus({ name, body: { ...node, status: { ...node.status, conditions } } })
}
