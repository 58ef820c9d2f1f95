/**
 * Client objects -> the plain views of cluster.port.ts. Accepts both shapes client-node hands out:
 * deserialized models from API calls (dates are Date) and raw JSON from watches (dates are strings).
 */
import type { V1ContainerStatus, V1DaemonSet, V1Job, V1Node, V1ObjectMeta, V1Pod } from '@kubernetes/client-node'
import type { ContainerView, DaemonSetView, JobView, NodeView, PodView } from '../ports/cluster.port.js'

function iso(value: Date | string | undefined): string | undefined {
  if (value === undefined || value === null) return undefined
  return value instanceof Date ? value.toISOString() : String(value)
}

function meta(m: V1ObjectMeta | undefined) {
  return {
    name: m?.name ?? '',
    namespace: m?.namespace ?? '',
    uid: m?.uid ?? '',
    labels: { ...(m?.labels ?? {}) },
    annotations: { ...(m?.annotations ?? {}) },
  }
}

/** Pure. */
export function toNodeView(node: V1Node): NodeView {
  const m = meta(node.metadata)
  return {
    name: m.name,
    uid: m.uid,
    labels: m.labels,
    annotations: m.annotations,
    taints: (node.spec?.taints ?? []).map((t) => ({
      key: t.key,
      effect: t.effect,
      ...(t.value === undefined ? {} : { value: t.value }),
    })),
    unschedulable: node.spec?.unschedulable === true,
    ready: (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  }
}

function toContainerView(status: V1ContainerStatus): ContainerView {
  const { waiting, running, terminated } = status.state ?? {}
  const base = {
    name: status.name,
    ready: status.ready === true,
    restartCount: status.restartCount ?? 0,
    image: status.image,
    ...((running ?? terminated)?.startedAt ? { startedAt: iso((running ?? terminated)!.startedAt) } : {}),
  }
  if (terminated)
    return {
      ...base,
      state: 'terminated',
      reason: terminated.reason,
      message: terminated.message,
      exitCode: terminated.exitCode,
    }
  if (waiting) return { ...base, state: 'waiting', reason: waiting.reason, message: waiting.message }
  if (running) return { ...base, state: 'running' }
  return { ...base, state: 'unknown' }
}

/** Pure. Containers without a status yet (not scheduled) appear as `unknown`. */
export function toPodView(pod: V1Pod): PodView {
  const m = meta(pod.metadata)
  // Regular containers only: a finished init container is never `ready`, and callers ask "are the
  // pod's containers ready/failed", which is about the regular ones.
  const statuses = pod.status?.containerStatuses ?? []
  const known = new Set(statuses.map((s) => s.name))
  const pending: ContainerView[] = (pod.spec?.containers ?? [])
    .filter((c) => !known.has(c.name))
    .map((c) => ({ name: c.name, ready: false, restartCount: 0, state: 'unknown', image: c.image }))
  const conditions = (pod.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
  }))
  return {
    ...m,
    nodeName: pod.spec?.nodeName,
    ...(pod.spec?.runtimeClassName ? { runtimeClassName: pod.spec.runtimeClassName } : {}),
    phase: pod.status?.phase ?? 'Unknown',
    deletionTimestamp: iso(pod.metadata?.deletionTimestamp),
    ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    containers: [...statuses.map(toContainerView), ...pending],
    conditions,
    ownerKinds: (pod.metadata?.ownerReferences ?? []).map((o) => o.kind),
    mirror: m.annotations['kubernetes.io/config.mirror'] !== undefined,
    emptyDirs: (pod.spec?.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name),
  }
}

/** Pure. A Job is decided by its terminal conditions (or their early `*Target`/`SuccessCriteriaMet` forms). */
export function toJobView(job: V1Job): JobView {
  const m = meta(job.metadata)
  const isTrue = (type: string) => (job.status?.conditions ?? []).find((c) => c.type === type && c.status === 'True')
  const failed = isTrue('Failed') ?? isTrue('FailureTarget')
  const complete = isTrue('Complete') ?? isTrue('SuccessCriteriaMet')
  const decided = failed ?? complete
  return {
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    labels: m.labels,
    annotations: m.annotations,
    outcome: failed ? 'Failed' : complete ? 'Complete' : 'Running',
    message: decided ? [decided.reason, decided.message].filter(Boolean).join(': ') || undefined : undefined,
    creationTimestamp: iso(job.metadata?.creationTimestamp),
    targetNode: jobTargetNode(job),
    images: (job.spec?.template.spec?.containers ?? []).map((c) => c.image ?? '').filter(Boolean),
  }
}

/** The one node a Job's pod is pinned to: spec.nodeName, a hostname nodeSelector, or a single-node required affinity. */
function jobTargetNode(job: V1Job): string | undefined {
  const spec = job.spec?.template.spec
  if (spec?.nodeName) return spec.nodeName
  const bySelector = spec?.nodeSelector?.['kubernetes.io/hostname']
  if (bySelector) return bySelector
  for (const term of spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ??
    []) {
    const pins = [
      ...(term.matchFields ?? []).filter((r) => r.key === 'metadata.name'),
      ...(term.matchExpressions ?? []).filter((r) => r.key === 'kubernetes.io/hostname'),
    ].filter((r) => r.operator === 'In' && r.values?.length === 1)
    if (pins[0]?.values?.[0]) return pins[0].values[0]
  }
  return undefined
}

/** Pure. */
export function toDaemonSetView(ds: V1DaemonSet): DaemonSetView {
  const m = meta(ds.metadata)
  return {
    name: m.name,
    namespace: m.namespace,
    generation: ds.metadata?.generation ?? 0,
    observedGeneration: ds.status?.observedGeneration ?? 0,
    updateStrategy: ds.spec?.updateStrategy?.type ?? 'RollingUpdate',
    desiredNumberScheduled: ds.status?.desiredNumberScheduled ?? 0,
  }
}
