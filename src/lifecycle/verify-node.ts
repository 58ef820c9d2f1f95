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
} from './verification.js'

export interface VerificationSettings {
  template: VerificationTemplate
  namespace: string
  timeoutMs: number
}

export type VerificationOutcome = NodeOutcome & { evidence?: VerificationEvidence }

const LOG_TAIL_LINES = 20

/**
 * Runs the user's verification pod on one node and watches it: Succeeded passes; Failed or a non-zero
 * exit fails at once; a pod still unfinished at the deadline fails with why it is stuck. Evidence
 * (phase, containers, events, log tail) is collected on failure; the pod is always deleted.
 * Safe to rerun: leftovers of an interrupted run on this node are removed first.
 */
export async function verifyNode(
  ctx: RunContext,
  settings: VerificationSettings,
  node: string,
): Promise<VerificationOutcome> {
  const { cluster } = ctx.deps
  const leftovers = await cluster.listPods({
    namespace: settings.namespace,
    labelSelector: `${VERIFICATION_LABEL}=${node}`,
  })
  await Promise.all(leftovers.map((p) => cluster.deletePod(p.namespace, p.name, 0)))
  const name = verificationPodName(node, randomSuffix(ctx.deps))
  const manifest = renderVerificationPod(settings.template, node, name, settings.namespace)
  try {
    await cluster.createPod(settings.namespace, manifest)
  } catch (error) {
    return { ok: false, reason: `could not create verification pod ${name}: ${describeError(error)}` }
  }
  try {
    const result = await cluster.waitForPods(
      { namespace: settings.namespace, fieldSelector: `metadata.name=${name}` },
      (pods) => judgeVerificationPod(pods[0]),
      settings.timeoutMs,
      ctx.signal,
    )
    if (result.done && result.value.passed) return { ok: true }
    const last = result.done ? undefined : result.last[0]
    const reason =
      result.done && !result.value.passed
        ? result.value.reason
        : `verification pod ${name} did not finish within ${Math.round(settings.timeoutMs / 1000)}s: ${describeStuckPod(last)}`
    const pod =
      (await cluster.listPods({ namespace: settings.namespace, fieldSelector: `metadata.name=${name}` }))[0] ?? last
    const diagnostics = await cluster.podDiagnostics(settings.namespace, name, LOG_TAIL_LINES)
    const evidence: VerificationEvidence = {
      pod: name,
      phase: pod?.phase ?? 'unknown',
      containers: (pod?.containers ?? []).map(
        (c) =>
          `${c.name}: ${c.state}${c.reason ? ` (${c.reason})` : ''}${c.exitCode !== undefined ? ` exit ${c.exitCode}` : ''}`,
      ),
      events: diagnostics.events,
      logTail: diagnostics.logTail,
    }
    return { ok: false, reason, evidence }
  } finally {
    await cluster.deletePod(settings.namespace, name, 0).catch(() => undefined)
  }
}
