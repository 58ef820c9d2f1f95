import type { PodView } from '../ports/cluster.port.js'
import type { LifecycleDeps } from './context.js'
import { TimeoutError } from './errors.js'

/** Pods a drain leaves alone: DaemonSet pods (kata-deploy among them) and static pods' mirrors. */
export function isDrainExempt(pod: PodView): boolean {
  return pod.mirror || pod.ownerKinds.includes('DaemonSet') || pod.phase === 'Succeeded' || pod.phase === 'Failed'
}

const BACKOFF_START_MS = 500
const BACKOFF_MAX_MS = 8_000

/**
 * Evicts every evictable pod on the node through the Eviction API, retrying PodDisruptionBudget
 * refusals (429) with exponential backoff, then waits (watch) until they are gone. Bounded by
 * `timeoutMs`; on timeout the error names the pods still blocking. Safe to rerun.
 */
export async function drainNode(deps: LifecycleDeps, node: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = deps.clock.now().getTime() + timeoutMs
  const onNode = { fieldSelector: `spec.nodeName=${node}` }
  let pending = (await deps.cluster.listPods(onNode)).filter((p) => !isDrainExempt(p))
  let backoff = BACKOFF_START_MS
  while (pending.length > 0) {
    const blocked: PodView[] = []
    for (const pod of pending) {
      if ((await deps.cluster.evictPod(pod.namespace, pod.name)) === 'blocked') blocked.push(pod)
    }
    if (blocked.length === 0) break
    const left = deadline - deps.clock.now().getTime()
    if (left <= 0) throw drainTimeout(node, blocked, 'a PodDisruptionBudget refuses their eviction')
    // A PDB refusal is retried with backoff: there is nothing to watch that says when it will allow it.
    await deps.clock.sleep(Math.min(backoff, left), signal)
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
    pending = blocked
  }
  const left = Math.max(0, deadline - deps.clock.now().getTime())
  const gone = await deps.cluster.waitForPods(onNode, (pods) => (pods.some((p) => !isDrainExempt(p)) ? undefined : true), left, signal)
  if (!gone.done) throw drainTimeout(node, gone.last.filter((p) => !isDrainExempt(p)), 'they did not terminate in time')
}

function drainTimeout(node: string, pods: PodView[], why: string): TimeoutError {
  const names = pods.map((p) => `${p.namespace}/${p.name}`).join(', ')
  return new TimeoutError(`drain of ${node} timed out: ${names} still on the node (${why})`, {
    suggestions: ['raise --drain-timeout, relax the PodDisruptionBudget, or move the pods yourself and rerun'],
  })
}
