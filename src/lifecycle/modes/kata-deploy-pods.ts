import type { PodView } from '../../ports/cluster.port.js'
import { NO_HOOKS, type NodeOutcome, type NodeOutcomes, type RunContext, type WaveHooks } from './strategy.js'
import { kataDeployNames } from '../context.js'

export const REVISION_LABEL = 'controller-revision-hash'

/** Waiting reasons after which a fresh kata-deploy pod is not going to become Ready by itself. */
const BROKEN = new Set(['CrashLoopBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'ErrImageNeverPull'])

/**
 * Judges one node's kata-deploy pods against the DaemonSet's current revision: Ready and carrying
 * `revisionHash` passes; a pod at that revision that crash-loops fails; anything else (no pod yet,
 * only the old or terminating pod) keeps watching. A terminating pod never counts. Pure.
 */
export function judgeKataDeployPods(
  pods: readonly PodView[],
  node: string,
  revisionHash: string,
): NodeOutcome | undefined {
  const current = pods.filter(
    (p) => p.nodeName === node && p.deletionTimestamp === undefined && p.labels[REVISION_LABEL] === revisionHash,
  )
  if (current.some((p) => p.ready)) return { ok: true }
  for (const pod of current) {
    const broken = pod.containers.find((c) => c.state === 'waiting' && c.reason !== undefined && BROKEN.has(c.reason))
    if (broken)
      return {
        ok: false,
        reason: `kata-deploy pod ${pod.name} on ${node} is ${broken.reason} (restarts: ${broken.restartCount})`,
      }
  }
  return undefined
}

function describeWaiting(pods: readonly PodView[], node: string, revisionHash: string): string {
  const onNode = pods.filter((p) => p.nodeName === node)
  if (onNode.length === 0) return `no kata-deploy pod appeared on ${node}`
  const parts = onNode.map(
    (p) =>
      `${p.name} (revision ${p.labels[REVISION_LABEL] ?? '?'}${p.deletionTimestamp ? ', terminating' : ''}, ${p.ready ? 'ready' : 'not ready'})`,
  )
  return `kata-deploy on ${node} never became Ready at revision ${revisionHash}: ${parts.join(', ')}`
}

/**
 * Deletes each node's kata-deploy pod unless it already runs the current revision (once
 * `hooks.starting` let the node through; the revision and the pods are read meanwhile), then
 * watches until every node's replacement is Ready at that revision (or failed, or the deadline
 * passed), telling `hooks.settled` of each node as it is judged. Safe to rerun: a node already at
 * the revision is not restarted again.
 */
export async function restartAndAwait(
  ctx: RunContext,
  wave: readonly string[],
  hooks: WaveHooks = NO_HOOKS,
): Promise<NodeOutcomes> {
  const { cluster } = ctx.deps
  const namespace = ctx.release.namespace
  const names = kataDeployNames(ctx.userValues)
  const starting = wave.map((node) => hooks.starting(node))
  const query = { namespace, labelSelector: names.podSelector }
  const [revisionHash, pods] = await Promise.all([
    cluster.daemonSetRevisionHash(namespace, names.daemonSet, ctx.readyTimeoutMs, ctx.signal),
    cluster.listPods(query),
  ])
  const started = await Promise.all(
    wave.map(async (node, i) => {
      if (!(await starting[i])) return false
      const onNode = pods.filter((p) => p.nodeName === node && p.deletionTimestamp === undefined)
      if (!onNode.some((p) => p.labels[REVISION_LABEL] === revisionHash))
        await Promise.all(onNode.map((p) => cluster.deletePod(namespace, p.name)))
      return true
    }),
  )
  const nodes = wave.filter((_, i) => started[i])
  const verdicts: NodeOutcomes = new Map()
  if (nodes.length === 0) return verdicts
  const inWave = new Set(nodes)
  const result = await cluster.waitForPods(
    query,
    (current) => {
      // One pass over the release's pods per event, grouped by node: O(N), not O(N x wave).
      const byNode = new Map<string, PodView[]>()
      for (const pod of current) {
        if (pod.nodeName === undefined || !inWave.has(pod.nodeName) || verdicts.has(pod.nodeName)) continue
        byNode.set(pod.nodeName, [...(byNode.get(pod.nodeName) ?? []), pod])
      }
      for (const [node, pods] of byNode) {
        const verdict = judgeKataDeployPods(pods, node, revisionHash)
        if (!verdict) continue
        verdicts.set(node, verdict)
        hooks.settled(node, verdict)
      }
      return verdicts.size === nodes.length ? true : undefined
    },
    ctx.readyTimeoutMs,
    ctx.signal,
  )
  if (!result.done) {
    for (const node of nodes) {
      if (!verdicts.has(node))
        verdicts.set(node, {
          ok: false,
          reason: `${describeWaiting(result.last, node, revisionHash)} within ${Math.round(ctx.readyTimeoutMs / 1000)}s`,
        })
    }
  }
  return verdicts
}
