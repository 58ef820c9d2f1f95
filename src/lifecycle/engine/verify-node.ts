import type { RunContext, NodeOutcome } from '../modes/strategy.js'
import { randomSuffix } from '../context.js'
import { describeError } from '../errors.js'
import type { VerificationEvidence } from '../run/report.js'
import {
  describeStuckPod,
  judgeVerificationPod,
  renderVerificationPod,
  verificationPodName,
  VERIFICATION_LABEL,
  type VerificationTemplate,
  type VerificationVerdict,
} from './verification.js'
import type { PodView } from '../../ports/cluster.port.js'

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
  return new Session(ctx, settings, wave, onPassed)
}

class Session implements VerificationSession {
  private readonly nodes: Set<string>
  private readonly podOf = new Map<string, string>()
  private readonly nodeOf = new Map<string, string>()
  private readonly deadline = new Map<string, number>()
  /** Nodes whose pod could not be created, with why. */
  private readonly unmade = new Map<string, VerificationOutcome>()
  private readonly verdicts = new Map<string, VerificationVerdict>()
  private readonly creating: Promise<void>[] = []
  /** Each pod is deleted once: as it passes, or when the session ends. */
  private readonly deletes = new Map<string, Promise<void>>()
  private readonly stop = new AbortController()
  private closed = false
  private latest: PodView[] = []
  /** The removal of an interrupted run's pods on these nodes, started as the watch first sees them. */
  private cleanup: Promise<unknown> | undefined
  /** The watch's failure, if it fails (caught at once: a watch that fails before `close` is no unhandled rejection). */
  private readonly watching: Promise<unknown>

  constructor(
    private readonly ctx: RunContext,
    private readonly settings: VerificationSettings,
    wave: readonly string[],
    private readonly onPassed: (node: string) => void,
  ) {
    this.nodes = new Set(wave)
    this.watching = this.watch().then(
      () => undefined,
      (error: unknown) => error,
    )
  }

  add(node: string): void {
    if (this.podOf.has(node)) return
    const name = verificationPodName(node, randomSuffix(this.ctx.deps))
    this.podOf.set(node, name)
    this.nodeOf.set(name, node)
    this.nodes.add(node)
    this.deadline.set(node, this.now() + this.settings.timeoutMs)
    const { namespace, template } = this.settings
    this.creating.push(
      this.ctx.deps.cluster.createPod(namespace, renderVerificationPod(template, node, name, namespace)).then(
        () => undefined,
        (error: unknown) => {
          this.unmade.set(node, {
            ok: false,
            reason: `could not create verification pod ${name}: ${describeError(error)}`,
          })
        },
      ),
    )
  }

  has(node: string): boolean {
    return this.podOf.has(node)
  }

  async close(): Promise<Map<string, VerificationOutcome>> {
    this.closed = true
    const timer = new AbortController()
    try {
      await Promise.all(this.creating)
      if (this.judged()) this.stop.abort(JUDGED)
      else {
        // The watch ends at the last pod's deadline if no event ends it before.
        const last = Math.max(...[...this.deadline.values()])
        void this.ctx.deps.clock.sleep(Math.max(0, last - this.now()), timer.signal).then(
          () => this.stop.abort(JUDGED),
          () => undefined,
        )
      }
      const failure = (await this.watching) ?? (await this.cleanup)
      if (failure !== undefined) throw failure
      return await this.outcomes()
    } finally {
      timer.abort()
      this.stop.abort(JUDGED)
      await Promise.all([...this.nodeOf.keys()].map((pod) => this.remove(pod)))
    }
  }

  private now(): number {
    return this.ctx.deps.clock.now().getTime()
  }

  /** Every added node's pod judged, unmade or past its deadline. */
  private judged(): boolean {
    return [...this.nodeOf.values()].every(
      (node) => this.verdicts.has(node) || this.unmade.has(node) || this.now() >= this.deadline.get(node)!,
    )
  }

  private remove(pod: string): Promise<void> {
    const deleting =
      this.deletes.get(pod) ?? this.ctx.deps.cluster.deletePod(this.settings.namespace, pod, 0).catch(() => undefined)
    this.deletes.set(pod, deleting)
    return deleting
  }

  /**
   * One watch for the session, from its start; one that reaches its own deadline before the last
   * pod is judged is started again, so a wave's slow upgrade never cuts its verification short.
   */
  private async watch(): Promise<void> {
    const query = { namespace: this.settings.namespace, labelSelector: VERIFICATION_LABEL }
    const limit = this.ctx.readyTimeoutMs + this.settings.timeoutMs
    try {
      for (;;) {
        const result = await this.ctx.deps.cluster.waitForPods(
          query,
          (pods) => this.decide(pods),
          limit,
          this.stop.signal,
        )
        if (result.done || (this.closed && this.judged())) return
      }
    } catch (error) {
      if (error !== JUDGED) throw error
    }
  }

  /** Each watch event: judges the session's pods, and removes leftovers of an interrupted run on first sight. */
  private decide(pods: PodView[]): true | undefined {
    this.latest = pods
    // Leftovers go while this run's pods are created (names differ); one that holds a node resource only delays the new pod.
    this.cleanup ??= removeLeftovers(
      this.ctx,
      pods.filter((p) => this.nodes.has(p.labels[VERIFICATION_LABEL] ?? '') && !this.nodeOf.has(p.name)),
    )
    for (const pod of pods) {
      const node = this.nodeOf.get(pod.name)
      if (node === undefined || this.verdicts.has(node) || this.now() >= this.deadline.get(node)!) continue
      const verdict = judgeVerificationPod(pod)
      if (!verdict) continue
      this.verdicts.set(node, verdict)
      if (!verdict.passed) continue
      this.onPassed(node)
      void this.remove(pod.name)
    }
    return this.closed && this.judged() ? true : undefined
  }

  private async outcomes(): Promise<Map<string, VerificationOutcome>> {
    const outcomes = new Map<string, VerificationOutcome>()
    await Promise.all(
      [...this.podOf].map(async ([node, name]) =>
        outcomes.set(
          node,
          this.unmade.get(node) ??
            (await outcomeOf(
              this.ctx,
              this.settings,
              name,
              this.verdicts.get(node),
              this.latest.find((p) => p.name === name),
            )),
        ),
      ),
    )
    return outcomes
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
