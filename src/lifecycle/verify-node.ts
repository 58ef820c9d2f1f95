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

/** One wave's verification pods, watched with one watch, nodes added as they become ready for it. */
export interface VerificationSession {
  /** Creates the node's verification pod now (once per node); its timeout runs from here. */
  add(node: string): void
  /** Whether `node` was added. */
  has(node: string): boolean
  /**
   * No more nodes: each added node's outcome, once every pod is judged or past its timeout. Every
   * pod is deleted before it resolves. Rejects when the watch fails outright (the nodes passed by
   * then were told to `onPassed`).
   */
  close(): Promise<Map<string, VerificationOutcome>>
}

/** Ends the session's watch when every pod is judged or past its timeout (never seen outside). */
const JUDGED = Symbol('every verification pod judged')

/**
 * Runs the user's verification pod on each node added to the session and watches them all with
 * one watch, started with the session: Succeeded passes; Failed or a non-zero exit fails at once;
 * a pod unfinished `timeoutMs` after its creation fails with why it is stuck. `onPassed` is called
 * as each node passes, while the others still run (so a node can go back in service at once). A
 * passed pod is deleted at once; evidence (phase, containers, events, log tail) is collected on
 * failure. Safe to rerun: leftovers of an interrupted run on the `wave`'s nodes are removed first.
 */
export function startVerification(
  ctx: RunContext,
  settings: VerificationSettings,
  wave: readonly string[],
  onPassed: (node: string) => void = () => undefined,
): VerificationSession {
  const { cluster, clock } = ctx.deps
  const { namespace, timeoutMs } = settings
  const query = { namespace, labelSelector: VERIFICATION_LABEL }
  const nodes = new Set(wave)
  const podOf = new Map<string, string>()
  const nodeOf = new Map<string, string>()
  const deadline = new Map<string, number>()
  const unmade = new Map<string, VerificationOutcome>()
  const verdicts = new Map<string, VerificationVerdict>()
  const creating: Promise<void>[] = []
  let closed = false
  let latest: PodView[] = []
  const now = () => clock.now().getTime()
  const stop = new AbortController()
  const signal = ctx.signal ? AbortSignal.any([stop.signal, ctx.signal]) : stop.signal
  const judged = () =>
    [...nodeOf.values()].every((node) => verdicts.has(node) || unmade.has(node) || now() >= deadline.get(node)!)

  // Leftovers of an interrupted run on these nodes, as the watch first sees the pods, go while this
  // run's pods are created (names differ); one that holds a node resource only delays the new pod.
  let cleanup: Promise<unknown> | undefined
  const clean = (pods: PodView[]) =>
    removeLeftovers(
      ctx,
      pods.filter((p) => nodes.has(p.labels[VERIFICATION_LABEL] ?? '') && !nodeOf.has(p.name)),
    )

  // Each pod is deleted once: as it passes, or when the session ends.
  const deletes = new Map<string, Promise<void>>()
  const remove = (pod: string): Promise<void> => {
    const deleting = deletes.get(pod) ?? cluster.deletePod(namespace, pod, 0).catch(() => undefined)
    deletes.set(pod, deleting)
    return deleting
  }

  const decide = (pods: PodView[]): true | undefined => {
    latest = pods
    cleanup ??= clean(pods)
    for (const pod of pods) {
      const node = nodeOf.get(pod.name)
      if (node === undefined || verdicts.has(node) || now() >= deadline.get(node)!) continue
      const verdict = judgeVerificationPod(pod)
      if (!verdict) continue
      verdicts.set(node, verdict)
      if (!verdict.passed) continue
      onPassed(node)
      void remove(pod.name)
    }
    return closed && judged() ? true : undefined
  }
  // One watch for the session, from its start; one that reaches its own deadline before the last
  // pod is judged is started again, so a wave's slow upgrade never cuts its verification short.
  const watch = async (): Promise<void> => {
    try {
      for (;;) {
        const result = await cluster.waitForPods(query, decide, ctx.readyTimeoutMs + timeoutMs, signal)
        if (result.done || (closed && judged())) return
      }
    } catch (error) {
      if (error !== JUDGED) throw error
    }
  }
  // Caught at once, so a watch that fails before `close` is no unhandled rejection.
  const watching = watch().then(
    () => undefined,
    (error: unknown) => error,
  )

  return {
    add(node) {
      if (podOf.has(node)) return
      const name = verificationPodName(node, randomSuffix(ctx.deps))
      podOf.set(node, name)
      nodeOf.set(name, node)
      nodes.add(node)
      deadline.set(node, now() + timeoutMs)
      creating.push(
        cluster.createPod(namespace, renderVerificationPod(settings.template, node, name, namespace)).then(
          () => undefined,
          (error: unknown) => {
            unmade.set(node, {
              ok: false,
              reason: `could not create verification pod ${name}: ${describeError(error)}`,
            })
          },
        ),
      )
    },
    has: (node) => podOf.has(node),
    async close() {
      closed = true
      const outcomes = new Map<string, VerificationOutcome>()
      const timer = new AbortController()
      try {
        await Promise.all(creating)
        if (judged()) stop.abort(JUDGED)
        else {
          // The watch ends at the last pod's deadline if no event ends it before.
          const last = Math.max(...[...deadline.values()])
          void clock.sleep(Math.max(0, last - now()), timer.signal).then(
            () => stop.abort(JUDGED),
            () => undefined,
          )
        }
        const failure = (await watching) ?? (await cleanup)
        if (failure !== undefined) throw failure
        await Promise.all(
          [...podOf].map(async ([node, name]) =>
            outcomes.set(
              node,
              unmade.get(node) ??
                (await outcomeOf(
                  ctx,
                  settings,
                  name,
                  verdicts.get(node),
                  latest.find((p) => p.name === name),
                )),
            ),
          ),
        )
        return outcomes
      } finally {
        timer.abort()
        stop.abort(JUDGED)
        await Promise.all([...nodeOf.keys()].map(remove))
      }
    },
  }
}

/** Deletes an interrupted run's verification pods; the error, if one failed (the session's close rethrows it). */
function removeLeftovers(ctx: RunContext, pods: readonly PodView[]): Promise<unknown> {
  return Promise.all(pods.map((p) => ctx.deps.cluster.deletePod(p.namespace, p.name, 0))).then(
    () => undefined,
    (error: unknown) => error,
  )
}

/**
 * One node's outcome once the session is over: passed, or failed with the verdict's reason (or why
 * its pod is stuck past its timeout) and the pod's evidence.
 */
async function outcomeOf(
  ctx: RunContext,
  settings: VerificationSettings,
  name: string,
  verdict: VerificationVerdict | undefined,
  last: PodView | undefined,
): Promise<VerificationOutcome> {
  if (verdict?.passed) return { ok: true }
  const reason =
    verdict && !verdict.passed
      ? verdict.reason
      : `verification pod ${name} did not finish within ${Math.round(settings.timeoutMs / 1000)}s: ${describeStuckPod(last)}`
  return { ok: false, reason, evidence: await evidenceOf(ctx, settings.namespace, name, last) }
}

/**
 * Runs the user's verification pod on each node of a wave and watches them all with one watch
 * (see startVerification); `onPassed` is called as each node passes.
 */
export function verifyNodes(
  ctx: RunContext,
  settings: VerificationSettings,
  nodes: readonly string[],
  onPassed: (node: string) => void = () => undefined,
): Promise<Map<string, VerificationOutcome>> {
  const session = startVerification(ctx, settings, nodes, onPassed)
  for (const node of nodes) session.add(node)
  return session.close()
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
