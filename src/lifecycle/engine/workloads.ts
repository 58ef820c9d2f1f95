/**
 * Whether the Kata workloads already running on a node came through its upgrade. Before the node's
 * kata-deploy changes (when it goes `upgrading`, after any drain), kata-lcm records the running pods
 * that use a Kata RuntimeClass: each pod's uid and its containers' restart counts and start times,
 * in an annotation on the node (the Argo steps run in separate pods). Once the node verified, the
 * pods there now are compared with the record: a pod that restarted, died or vanished is named on
 * the node, in an Event, in the report and in `status`. kata-deploy 3.28.0's cleanup crashed the
 * Kata pods running on its node (kata-containers#12761): this is how an operator learns of it.
 */
import type { PodView } from '../../ports/cluster.port.js'

/** What a run does when a node's Kata workloads were disrupted: name them (`report`), or also stop before the next wave. */
export type OnDisruption = 'report' | 'stop'
export const ON_DISRUPTION: readonly OnDisruption[] = ['report', 'stop']

/** Whether a RuntimeClass is Kata's: its handler or its name starts `kata-` (kata-deploy's kata-qemu, kata-clh, ...). Pure. */
export function isKataRuntimeClass(rc: { name: string; handler: string }): boolean {
  return /^kata-/.test(rc.handler) || /^kata-/.test(rc.name)
}

/** One running Kata pod as recorded: its uid and, per container, `[restarts, startedAt]`. */
export interface RecordedPod {
  uid: string
  containers: Record<string, [number, string]>
}

/** The node's Kata pods before its upgrade, by `namespace/name`. */
export type WorkloadRecord = Record<string, RecordedPod>

export type Disruption = { pod: string; what: 'restarted' | 'died' | 'vanished' }

/** The running, not terminating pods of `pods` that use one of `kataClasses`. Pure. */
export function recordWorkloads(pods: readonly PodView[], kataClasses: ReadonlySet<string>): WorkloadRecord {
  const record: WorkloadRecord = {}
  for (const pod of pods) {
    if (pod.phase !== 'Running' || pod.deletionTimestamp || !kataClasses.has(pod.runtimeClassName ?? '')) continue
    record[`${pod.namespace}/${pod.name}`] = {
      uid: pod.uid,
      containers: Object.fromEntries(pod.containers.map((c) => [c.name, [c.restartCount, c.startedAt ?? '']])),
    }
  }
  return record
}

/**
 * The recorded pods that did not come through: gone or replaced (`vanished`), failed (`died`), or
 * with a container that restarted or started again (`restarted`). A pod that completed on its own
 * (`Succeeded`) came through. Pure.
 */
export function disruptions(before: WorkloadRecord, now: readonly PodView[]): Disruption[] {
  const byName = new Map(now.map((p) => [`${p.namespace}/${p.name}`, p]))
  const found: Disruption[] = []
  for (const [pod, recorded] of Object.entries(before)) {
    const current = byName.get(pod)
    if (!current || current.uid !== recorded.uid || current.deletionTimestamp) found.push({ pod, what: 'vanished' })
    else if (current.phase === 'Failed') found.push({ pod, what: 'died' })
    else if (
      current.containers.some((c) => {
        const [restarts, startedAt] = recorded.containers[c.name] ?? [0, '']
        return c.restartCount > restarts || (startedAt !== '' && c.startedAt !== undefined && c.startedAt !== startedAt)
      })
    )
      found.push({ pod, what: 'restarted' })
  }
  return found.sort((a, b) => a.pod.localeCompare(b.pod))
}

/** `ns/a restarted, ns/b vanished`: the annotation's and the Event's text. Pure. */
export function describeDisruptions(found: readonly Disruption[]): string {
  return found.map((d) => `${d.pod} ${d.what}`).join(', ')
}

/** The record as the node's annotation holds it. Pure. */
export function encodeWorkloads(record: WorkloadRecord): string {
  return JSON.stringify(record)
}

/** The record from the node's annotation; undefined when there is none or it is not one (nothing to compare). Pure. */
export function decodeWorkloads(text: string | undefined): WorkloadRecord | undefined {
  if (text === undefined) return undefined
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as WorkloadRecord) : undefined
  } catch {
    return undefined
  }
}
