// Small Kubernetes helpers for the benchmark: fleet creation, watch-based waits, cleanup.
// Self-contained on purpose (the e2e harness is vitest-oriented and edited by others).
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Node,
} from '@kubernetes/client-node'

export const FAKE_NODE_LABEL = 'kata-lcm.test/fake-node'
export const FLEET_LABEL = 'kata-lcm.bench/fleet'
/** Every annotation kata-lcm writes on a node (docs/architecture.md); cleared between runs. */
export const KATA_LCM_NODE_ANNOTATIONS = [
  'katacontainers.io/kata-lifecycle-manager-status',
  'katacontainers.io/kata-current-version',
  'kata-lcm.katacontainers.io/run-id',
  'kata-lcm.katacontainers.io/was-unschedulable',
  'kata-lcm.katacontainers.io/cordoned-by-kata-lcm',
  'kata-lcm.katacontainers.io/previous-version',
  'kata-lcm.katacontainers.io/target-version',
  'kata-lcm.katacontainers.io/phase-started-at',
  'kata-lcm.katacontainers.io/last-error',
]
export const STATUS = 'katacontainers.io/kata-lifecycle-manager-status'
export const VERSION = 'katacontainers.io/kata-current-version'

export interface Kube {
  kc: KubeConfig
  core: CoreV1Api
  apps: AppsV1Api
  watch: Watch
}

export function connect(kubeconfig: string): Kube {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), watch: new Watch(kc) }
}

/** Runs fn over items with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

function statusCode(e: unknown): number | undefined {
  const err = e as { code?: unknown; statusCode?: unknown }
  return typeof err.code === 'number' ? err.code : typeof err.statusCode === 'number' ? err.statusCode : undefined
}

/** Retries transient failures (the API server on 2 cores may time out or throttle under load). */
async function retry<T>(what: string, fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (e) {
      const code = statusCode(e)
      if (i >= attempts || (code !== undefined && code < 500 && code !== 429 && code !== 409))
        throw new Error(`${what}: ${(e as Error).message}`, { cause: e })
      await new Promise((r) => setTimeout(r, 500 * i))
    }
  }
}

export function fakeNode(name: string, fleet: string): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        [FAKE_NODE_LABEL]: 'true',
        [FLEET_LABEL]: fleet,
      },
    },
    spec: {},
  }
}

/** Creates the nodes (32 requests in flight) and waits, by watch, until kwok reports each one Ready. */
export async function createFleet(k: Kube, names: readonly string[], fleet: string, timeoutMs: number): Promise<void> {
  await pool(names, 32, async (name) => {
    await retry(`create node ${name}`, async () => {
      try {
        await k.core.createNode({ body: fakeNode(name, fleet) })
      } catch (e) {
        if (statusCode(e) !== 409) throw e
      }
    })
  })
  const want = new Set(names)
  await watchUntil<V1Node>(
    k,
    '/api/v1/nodes',
    { labelSelector: `${FLEET_LABEL}=${fleet}` },
    async () => {
      const list = await k.core.listNode({ labelSelector: `${FLEET_LABEL}=${fleet}` })
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' }
    },
    (objs) => {
      let ready = 0
      for (const n of objs.values())
        if (
          want.has(n.metadata?.name ?? '') &&
          (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
        )
          ready++
      return ready === want.size
    },
    timeoutMs,
    `${names.length} nodes Ready`,
  )
}

interface Obj {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string }
}

/**
 * List, then watch from the list's resourceVersion until `done(current objects)`; re-lists when the
 * watch ends or fails. Throws after timeoutMs.
 */
export async function watchUntil<T extends Obj>(
  k: Kube,
  path: string,
  query: Record<string, string>,
  list: () => Promise<{ items: T[]; resourceVersion: string }>,
  done: (objs: Map<string, T>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Map<string, T>> {
  const deadline = Date.now() + timeoutMs
  const key = (o: T) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`
  for (;;) {
    const listed = await retry(`list ${what}`, list)
    const objs = new Map(listed.items.map((o) => [key(o), o]))
    if (done(objs)) return objs
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`timed out waiting for ${what}`)
    const finished = await new Promise<boolean>((resolve) => {
      let settled = false
      let ctl: AbortController | undefined
      const finish = (v: boolean) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        ctl?.abort()
        resolve(v)
      }
      // Re-list every 15 s as well: a watch that silently misses events cannot stall the wait.
      const timer = setTimeout(() => finish(false), Math.min(left, 15_000))
      k.watch
        .watch(
          path,
          { ...query, resourceVersion: listed.resourceVersion, allowWatchBookmarks: true },
          (phase: string, obj: T) => {
            if (phase === 'BOOKMARK') return
            if (phase === 'ERROR') return finish(false)
            if (phase === 'DELETED') objs.delete(key(obj))
            else objs.set(key(obj), obj)
            if (done(objs)) finish(true)
          },
          () => finish(false),
        )
        .then(
          (c) => {
            ctl = c
            if (settled) c.abort()
          },
          () => finish(false),
        )
    })
    if (finished) return objs
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
  }
}

/** Waits until the DaemonSet schedules `n` pods, all updated and Ready. */
export async function waitDaemonSetReady(
  k: Kube,
  namespace: string,
  name: string,
  n: number,
  timeoutMs: number,
): Promise<void> {
  await watchUntil(
    k,
    `/apis/apps/v1/namespaces/${namespace}/daemonsets`,
    { fieldSelector: `metadata.name=${name}` },
    async () => {
      const list = await k.apps.listNamespacedDaemonSet({ namespace, fieldSelector: `metadata.name=${name}` })
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' }
    },
    (objs) => {
      const ds = [...objs.values()][0]
      const s = ds?.status
      return (
        !!ds &&
        (s?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1) &&
        s?.desiredNumberScheduled === n &&
        s.numberReady === n &&
        s.updatedNumberScheduled === n
      )
    },
    timeoutMs,
    `daemonset ${namespace}/${name} with ${n} Ready pods`,
  )
}

/** Deletes a namespace and waits until it (and so its pods) is gone. */
export async function deleteNamespace(k: Kube, namespace: string, timeoutMs: number): Promise<void> {
  try {
    await k.core.deleteNamespace({ name: namespace })
  } catch (e) {
    if (statusCode(e) !== 404) throw e
  }
  await watchUntil(
    k,
    '/api/v1/namespaces',
    { fieldSelector: `metadata.name=${namespace}` },
    async () => {
      const list = await k.core.listNamespace({ fieldSelector: `metadata.name=${namespace}` })
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' }
    },
    (objs) => objs.size === 0,
    timeoutMs,
    `namespace ${namespace} deleted`,
  )
}

/** Removes kata-lcm's annotations and any cordon from the fleet's nodes (only those that carry them). */
export async function resetNodes(k: Kube, fleet: string): Promise<number> {
  const list = await k.core.listNode({ labelSelector: `${FLEET_LABEL}=${fleet}` })
  const dirty = list.items.filter(
    (n) => n.spec?.unschedulable || KATA_LCM_NODE_ANNOTATIONS.some((a) => n.metadata?.annotations?.[a] !== undefined),
  )
  const body = {
    metadata: { annotations: Object.fromEntries(KATA_LCM_NODE_ANNOTATIONS.map((a) => [a, null])) },
    spec: { unschedulable: null },
  }
  await pool(dirty, 32, async (n) => {
    await retry(`reset node ${n.metadata?.name}`, () =>
      k.core.patchNode({ name: n.metadata!.name!, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    )
  })
  return dirty.length
}

/** Node name -> kata-lcm status/version, for checking a run's end state. */
export async function nodeStates(
  k: Kube,
  fleet: string,
): Promise<{ name: string; status?: string; version?: string; unschedulable: boolean }[]> {
  const list = await k.core.listNode({ labelSelector: `${FLEET_LABEL}=${fleet}` })
  return list.items.map((n) => ({
    name: n.metadata?.name ?? '',
    status: n.metadata?.annotations?.[STATUS],
    version: n.metadata?.annotations?.[VERSION],
    unschedulable: n.spec?.unschedulable === true,
  }))
}

/** kata-deploy pod name -> node name in a namespace. */
export async function kataDeployPods(k: Kube, namespace: string): Promise<Map<string, string>> {
  const list = await k.core.listNamespacedPod({ namespace, labelSelector: 'name=kata-deploy' })
  return new Map(list.items.map((p) => [p.metadata?.name ?? '', p.spec?.nodeName ?? '']))
}

/** A GET whose audit event proves every earlier request is in the log (see test/e2e/harness/audit.ts). */
export async function auditBarrierRequest(k: Kube, name: string): Promise<void> {
  try {
    await k.core.readNamespace({ name })
  } catch {
    // 404 expected
  }
}

/** The control plane's leader-election Leases the bench watches over a run. */
export const CONTROL_PLANE_LEASES = ['kube-controller-manager', 'kube-scheduler'] as const

/** Who holds each control-plane component's Lease, and how often it changed hands. */
export type LeaseHolders = Record<string, { holder: string; transitions: number }>

/**
 * The control plane's Leases now (kube-system). A component that lost its lease exits and its next
 * process takes it again: another holder identity and one transition more.
 */
export async function controlPlaneLeases(k: Kube): Promise<LeaseHolders> {
  const coordination = k.kc.makeApiClient(CoordinationV1Api)
  const entries = await Promise.all(
    CONTROL_PLANE_LEASES.map(async (name) => {
      const lease = await coordination.readNamespacedLease({ namespace: 'kube-system', name })
      return [name, { holder: lease.spec?.holderIdentity ?? '', transitions: lease.spec?.leaseTransitions ?? 0 }]
    }),
  )
  return Object.fromEntries(entries) as LeaseHolders
}

/** The components whose Lease changed hands between `before` and `after` (none: every lease kept). Pure. */
export function leasesLost(before: LeaseHolders, after: LeaseHolders): string[] {
  return Object.keys(before).filter(
    (name) => before[name]!.holder !== after[name]?.holder || before[name]!.transitions !== after[name]?.transitions,
  )
}
