import type { RunContext, NodeOutcome } from './modes/strategy.js'
import { randomSuffix } from './context.js'
import { describeError } from './errors.js'
import type { VerificationEvidence } from './report.js'
import {
  describeStuckPod,
  judgeVerificationPod,
  renderVerificationPod,
  verificationPodName,
  VERIFICATION_LABEL,
  type VerificationTemplate,
  type VerificationVerdict,
} from './verification.js'
import type { PodView } from '../ports/cluster.port.js'

export interface VerificationSettings {
  template: VerificationTemplate
  namespace: string
  timeoutMs: number
}

export type VerificationOutcome = NodeOutcome & { evidence?: VerificationEvidence }

const LOG_TAIL_LINES = 20

/**
 * Runs the user's verification pod on each node of a wave and watches them all with one watch:
 * Succeeded passes; Failed or a non-zero exit fails at once; a pod still unfinished at the deadline
 * fails with why it is stuck. `onPassed` is called as each node passes, while the others still run
 * (so a node can go back in service at once). A passed pod is deleted at once; evidence (phase,
 * containers, events, log tail) is collected on failure; every pod is deleted before this returns.
 * Safe to rerun: leftovers of an interrupted run on these nodes are removed first.
 */
export async function verifyNodes(
  ctx: RunContext,
  settings: VerificationSettings,
  nodes: readonly string[],
  onPassed: (node: string) => void = () => undefined,
): Promise<Map<string, VerificationOutcome>> {
  const { cluster } = ctx.deps
  const { namespace } = settings
  const wave = new Set(nodes)
  const query = { namespace, labelSelector: VERIFICATION_LABEL }
  const podOf = new Map(nodes.map((node) => [node, verificationPodName(node, randomSuffix(ctx.deps))]))
  const ours = new Set(podOf.values())
  // Leftovers of an interrupted run on these nodes go while this run's pods are created (names
  // differ); a pod of theirs that holds a node resource only delays the new one's scheduling.
  const cleanup = cluster
    .listPods(query)
    .then((pods) =>
      Promise.all(
        pods
          .filter((p) => wave.has(p.labels[VERIFICATION_LABEL] ?? '') && !ours.has(p.name))
          .map((p) => cluster.deletePod(p.namespace, p.name, 0)),
      ),
    )
    .then(
      () => undefined,
      (error: unknown) => error,
    )
  const outcomes = new Map<string, VerificationOutcome>()
  await Promise.all(
    nodes.map(async (node) => {
      const name = podOf.get(node)!
      try {
        await cluster.createPod(namespace, renderVerificationPod(settings.template, node, name, namespace))
      } catch (error) {
        outcomes.set(node, { ok: false, reason: `could not create verification pod ${name}: ${describeError(error)}` })
      }
    }),
  )
  const running = nodes.filter((n) => !outcomes.has(n))
  const nodeOf = new Map(running.map((node) => [podOf.get(node)!, node]))
  // Each pod is deleted once: as it passes, or when the watch ends.
  const deletes = new Map<string, Promise<void>>()
  const remove = (pod: string): Promise<void> => {
    const deleting = deletes.get(pod) ?? cluster.deletePod(namespace, pod, 0).catch(() => undefined)
    deletes.set(pod, deleting)
    return deleting
  }
  try {
    const failed = await cleanup
    if (failed !== undefined) throw failed
    if (running.length === 0) return outcomes
    const verdicts = new Map<string, VerificationVerdict>()
    const result = await cluster.waitForPods(
      query,
      (pods) => {
        for (const pod of pods) {
          const node = nodeOf.get(pod.name)
          if (node === undefined || verdicts.has(node)) continue
          const verdict = judgeVerificationPod(pod)
          if (!verdict) continue
          verdicts.set(node, verdict)
          if (!verdict.passed) continue
          onPassed(node)
          void remove(pod.name)
        }
        return verdicts.size === running.length ? true : undefined
      },
      settings.timeoutMs,
      ctx.signal,
    )
    await Promise.all(
      running.map(async (node) => {
        const verdict = verdicts.get(node)
        if (verdict?.passed) return outcomes.set(node, { ok: true })
        const name = podOf.get(node)!
        const last = result.done ? undefined : result.last.find((p) => p.name === name)
        const reason =
          verdict && !verdict.passed
            ? verdict.reason
            : `verification pod ${name} did not finish within ${Math.round(settings.timeoutMs / 1000)}s: ${describeStuckPod(last)}`
        return outcomes.set(node, { ok: false, reason, evidence: await evidenceOf(ctx, namespace, name, last) })
      }),
    )
    return outcomes
  } finally {
    await Promise.all([...nodeOf.keys()].map(remove))
  }
}

/** One node's verification (`rollback NODE` verifies the node it reverted). */
export async function verifyNode(
  ctx: RunContext,
  settings: VerificationSettings,
  node: string,
): Promise<VerificationOutcome> {
  return (await verifyNodes(ctx, settings, [node])).get(node)!
}

/** What a failed verification pod shows: its phase and containers, its events, its last log lines. */
async function evidenceOf(
  ctx: RunContext,
  namespace: string,
  name: string,
  last: PodView | undefined,
): Promise<VerificationEvidence> {
  const { cluster } = ctx.deps
  const pod = (await cluster.listPods({ namespace, fieldSelector: `metadata.name=${name}` }))[0] ?? last
  const diagnostics = await cluster.podDiagnostics(namespace, name, LOG_TAIL_LINES)
  return {
    pod: name,
    phase: pod?.phase ?? 'unknown',
    containers: (pod?.containers ?? []).map(
      (c) =>
        `${c.name}: ${c.state}${c.reason ? ` (${c.reason})` : ''}${c.exitCode !== undefined ? ` exit ${c.exitCode}` : ''}`,
    ),
    events: diagnostics.events,
    logTail: diagnostics.logTail,
  }
}
