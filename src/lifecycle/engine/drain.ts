import type { PodView } from '../../ports/cluster.port.js'
import type { LifecycleDeps } from '../context.js'
import { PreconditionError, TimeoutError } from '../errors.js'
import { listed } from '../run/report.js'

/** What a drain may evict beyond pods a controller recreates (kubectl drain's --force and --delete-emptydir-data). */
export interface DrainPolicy {
  /** Evict pods no controller manages: nothing recreates them. */
  force: boolean
  /** Evict pods with emptyDir volumes: their data is lost. */
  deleteEmptyDirData: boolean
}

export const NO_FORCE: DrainPolicy = { force: false, deleteEmptyDirData: false }

/** Pods a drain leaves alone: DaemonSet pods (kata-deploy among them), static pods' mirrors, finished pods. */
export function isDrainExempt(pod: PodView): boolean {
  return pod.mirror || pod.ownerKinds.includes('DaemonSet') || pod.phase === 'Succeeded' || pod.phase === 'Failed'
}

/** Why the policy forbids evicting `pod`, or undefined when it may go. Pure. */
export function drainRefusal(pod: PodView, policy: DrainPolicy): string | undefined {
  if (isDrainExempt(pod)) return undefined
  if (pod.ownerKinds.length === 0 && !policy.force)
    return 'no controller manages it, so nothing would recreate it (--drain-force evicts it anyway)'
  if (pod.emptyDirs.length > 0 && !policy.deleteEmptyDirData)
    return `its emptyDir data (${pod.emptyDirs.join(', ')}) would be lost (--drain-delete-emptydir-data evicts it anyway)`
  return undefined
}

/**
 * Checks the pods on `nodes` before anything is cordoned or evicted: throws a PreconditionError naming
 * every pod the policy forbids evicting and every pod whose PodDisruptionBudget refuses its eviction
 * now (a dry-run eviction each: the API server judges, nothing changes), so a wave is refused as a
 * whole and a drain never hangs on a budget. One pod list. Read-only.
 */
export async function checkDrainable(
  deps: LifecycleDeps,
  nodes: readonly string[],
  policy: DrainPolicy,
  what: string,
): Promise<void> {
  const wanted = new Set(nodes)
  const pods = (await deps.cluster.listPods({})).filter((p) => p.nodeName !== undefined && wanted.has(p.nodeName))
  const refused = pods.flatMap((p) => {
    const why = drainRefusal(p, policy)
    return why ? [`${p.namespace}/${p.name} on ${p.nodeName}: ${why}`] : []
  })
  const evictable = pods.filter((p) => !isDrainExempt(p) && drainRefusal(p, policy) === undefined)
  const verdicts = await Promise.all(
    evictable.map(async (p) =>
      (await deps.cluster.evictPod(p.namespace, p.name, { dryRun: true })) === 'blocked' ? p : undefined,
    ),
  )
  for (const p of verdicts)
    if (p) refused.push(`${p.namespace}/${p.name} on ${p.nodeName}: a PodDisruptionBudget refuses its eviction now`)
  if (refused.length === 0) return
  const shown = listed(refused, 10, '; ')
  throw new PreconditionError(
    `--drain: ${what} not started, ${refused.length} pod(s) cannot be evicted safely: ${shown}`,
    {
      suggestions: [
        'move or delete those pods yourself, or pass --drain-force / --drain-delete-emptydir-data if losing them is fine',
      ],
    },
  )
}

const BACKOFF_START_MS = 500
const BACKOFF_MAX_MS = 8_000

/**
 * Evicts every pod on the node that the policy allows (a pod it forbids fails the node before any
 * eviction) through the Eviction API, retrying PodDisruptionBudget
 * refusals (429) with exponential backoff, then waits (watch) until they are gone. Bounded by
 * `timeoutMs`; on timeout the error names the pods still blocking. Safe to rerun.
 */
export async function drainNode(
  deps: LifecycleDeps,
  node: string,
  timeoutMs: number,
  policy: DrainPolicy,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = deps.clock.now().getTime() + timeoutMs
  const onNode = { fieldSelector: `spec.nodeName=${node}` }
  const present = (await deps.cluster.listPods(onNode)).filter((p) => !isDrainExempt(p))
  // A pod that arrived after the wave's check is refused here too: never evicted against the policy.
  const refused = present.flatMap((p) =>
    drainRefusal(p, policy) ? [`${p.namespace}/${p.name}: ${drainRefusal(p, policy)}`] : [],
  )
  if (refused.length > 0) throw new PreconditionError(`drain of ${node} refused: ${refused.join('; ')}`)
  let pending = present
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
  const gone = await deps.cluster.waitForPods(
    onNode,
    (pods) => (pods.some((p) => !isDrainExempt(p)) ? undefined : true),
    left,
    signal,
  )
  if (!gone.done)
    throw drainTimeout(
      node,
      gone.last.filter((p) => !isDrainExempt(p)),
      'they did not terminate in time',
    )
}

function drainTimeout(node: string, pods: PodView[], why: string): TimeoutError {
  const names = pods.map((p) => `${p.namespace}/${p.name}`).join(', ')
  return new TimeoutError(`drain of ${node} timed out: ${names} still on the node (${why})`, {
    suggestions: ['raise --drain-timeout, relax the PodDisruptionBudget, or move the pods yourself and rerun'],
  })
}
