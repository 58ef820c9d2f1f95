import type { NodeView, PodView } from '../../ports/cluster.port.js'
import { NO_HOOKS, type NodeOutcome, type NodeOutcomes, type RunContext, type WaveHooks } from './strategy.js'
import { kataDeployNames } from '../context.js'
import { describeError } from '../errors.js'
import { hopelessContainer } from '../engine/pod-waiting.js'

export const REVISION_LABEL = 'controller-revision-hash'

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
    const broken = hopelessContainer(pod)
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

/** The release's `nodeSelector` (exact labels the DaemonSet's pods select nodes by); {} when it has none. Pure. */
function nodeSelectorOf(values: Record<string, unknown>): Record<string, string> {
  const selector = values.nodeSelector
  if (typeof selector !== 'object' || selector === null || Array.isArray(selector)) return {}
  return Object.fromEntries(Object.entries(selector).map(([k, v]) => [k, String(v)]))
}

/**
 * A wave's node that its pod watch cannot settle: deleted meanwhile (an autoscaler's scale-down, a
 * reclaimed spot instance), or whose labels no longer match the release's nodeSelector (the
 * DaemonSet controller removes its pod), gets no pod ever. The nodes' watch judges it gone at once
 * (`settle` returns whether the node was still open), not when the ready timeout runs out.
 */
function watchDepartures(
  ctx: RunContext,
  wave: readonly string[],
  settle: (node: string, verdict: NodeOutcome) => boolean,
  recheck: () => void,
  signal: AbortSignal,
): Promise<unknown> {
  const selector = nodeSelectorOf(ctx.userValues)
  const inWave = new Set(wave)
  return ctx.deps.cluster
    .waitForNodes(
      undefined,
      (nodes) => {
        // Only the wave's nodes are looked up: one pass, no map of the whole fleet per event.
        const present = new Map<string, NodeView>()
        for (const n of nodes) if (inWave.has(n.name)) present.set(n.name, n)
        let settled = false
        for (const node of wave) {
          const view = present.get(node)
          const outside = view && Object.entries(selector).find(([k, v]) => view.labels[k] !== v)
          if (view && !outside) continue
          const verdict: NodeOutcome = view
            ? {
                ok: false,
                gone: 'left',
                reason: `${node} left the release: it no longer carries its nodeSelector's ${outside![0]}=${outside![1]}`,
              }
            : { ok: false, gone: 'deleted', reason: `${node} was deleted` }
          if (settle(node, verdict)) settled = true
        }
        if (settled) recheck()
        return undefined
      },
      ctx.readyTimeoutMs,
      signal,
    )
    .catch(() => undefined)
}

/** A node whose kata-deploy was not Ready at the revision within the ready timeout, and why. Pure. */
function notReady(
  ctx: RunContext,
  node: string,
  restarted: boolean,
  last: PodView[],
  revisionHash: string | undefined,
): NodeOutcome {
  const within = `within ${Math.round(ctx.readyTimeoutMs / 1000)}s`
  return {
    ok: false,
    reason: restarted
      ? `${describeWaiting(last, node, revisionHash ?? '?')} ${within}`
      : `kata-deploy on ${node} was not restarted ${within}`,
  }
}

/** Ends the wait of `restartAndAwait` when a node settles without a pod event (never seen outside). */
const SETTLED = Symbol('every node settled')

/**
 * Deletes each node's kata-deploy pod unless it already runs the current revision (once
 * `hooks.starting` let the node through), and watches until every node's replacement is Ready at
 * that revision (or failed, or the deadline passed), telling `hooks.settled` of each node as it is
 * judged. One list and one watch: the watch starts at once, and its first list is the pods each
 * node's delete is chosen from, so a node whose hook lets it through early is restarted while the
 * others' hooks still run. Safe to rerun: a node already at the revision is not restarted again.
 */
export async function restartAndAwait(
  ctx: RunContext,
  wave: readonly string[],
  hooks: WaveHooks = NO_HOOKS,
): Promise<NodeOutcomes> {
  if (wave.length === 0) return new Map()
  return new Restart(ctx, wave, hooks).run()
}

/** One wave's restart and wait (`restartAndAwait`): its state, and what each event and each node does to it. */
class Restart {
  readonly verdicts: NodeOutcomes = new Map()
  /** Nodes let through, their old pod deleted: judged from here on. */
  private readonly started = new Set<string>()
  /** Nodes their hook held back. */
  private readonly held = new Set<string>()
  private readonly inWave: Set<string>
  private readonly names: ReturnType<typeof kataDeployNames>
  private revisionHash: string | undefined
  private listed!: (pods: PodView[]) => void
  /** The first list of the release's pods: each node's delete is chosen from it. */
  private readonly firstList = new Promise<PodView[]>((resolve) => (this.listed = resolve))
  /** No pod is deleted once the wait is over: a node let through after it is not restarted unwatched. */
  private over = false
  private readonly stop = new AbortController()
  /** The wave's pods as last seen, by node: one pass over the release's pods per event, O(N). */
  private onNode = new Map<string, PodView[]>()

  constructor(
    private readonly ctx: RunContext,
    private readonly wave: readonly string[],
    private readonly hooks: WaveHooks,
  ) {
    this.inWave = new Set(wave)
    this.names = kataDeployNames(ctx.userValues)
  }

  async run(): Promise<NodeOutcomes> {
    const { ctx, wave, stop } = this
    const starting = wave.map((node) => this.hooks.starting(node))
    const query = { namespace: ctx.release.namespace, labelSelector: this.names.podSelector }
    const watching = ctx.deps.cluster
      .waitForPods(query, (pods) => this.decide(pods), ctx.readyTimeoutMs, stop.signal)
      .catch((error: unknown) => {
        if (error === SETTLED) return { done: true as const, value: true as const }
        throw error
      })
    const departed = watchDepartures(
      ctx,
      wave,
      (node, verdict) => this.settle(node, verdict),
      () => this.recheck(),
      stop.signal,
    )
    const hash = this.revision()
    const starts = wave.map(async (node, i) => this.start(node, await starting[i]!, hash))
    let result: Awaited<typeof watching>
    try {
      result = await watching
    } finally {
      this.over = true
      this.listed([])
      stop.abort(SETTLED)
      await Promise.allSettled([hash, departed, ...starts])
    }
    if (!result.done)
      for (const node of wave)
        if (!this.verdicts.has(node) && !this.held.has(node))
          this.verdicts.set(node, notReady(ctx, node, this.started.has(node), result.last, this.revisionHash))
    return this.verdicts
  }

  /** The DaemonSet's current revision; once known every started node is judged. Its failure ends the wait. */
  private revision(): Promise<string> {
    const { ctx } = this
    return ctx.deps.cluster.daemonSetRevisionHash(ctx.release.namespace, this.names.daemonSet, ctx.readyTimeoutMs).then(
      (value) => {
        this.revisionHash = value
        this.recheck(...this.started)
        return value
      },
      (error: unknown) => {
        this.stop.abort(error)
        throw error
      },
    )
  }

  /** A node its hook let through: its old pod deleted unless one already runs the revision; then judged. */
  private async start(node: string, letThrough: boolean, hash: Promise<string>): Promise<void> {
    if (!letThrough) {
      this.held.add(node)
      return this.recheck()
    }
    const [current, pods] = await Promise.all([hash, this.firstList])
    if (this.over) return
    const onNode = pods.filter((p) => p.nodeName === node && p.deletionTimestamp === undefined)
    try {
      if (!onNode.some((p) => p.labels[REVISION_LABEL] === current))
        await Promise.all(onNode.map((p) => this.ctx.deps.cluster.deletePod(this.ctx.release.namespace, p.name)))
    } catch (error) {
      this.settle(node, { ok: false, reason: `could not restart kata-deploy on ${node}: ${describeError(error)}` })
      return this.recheck()
    }
    this.started.add(node)
    this.recheck(node)
  }

  /** Records a node's verdict and tells the hook, unless it has one already; whether it was new. */
  private settle(node: string, verdict: NodeOutcome): boolean {
    if (this.verdicts.has(node)) return false
    this.verdicts.set(node, verdict)
    this.hooks.settled(node, verdict)
    return true
  }

  private settledAll(): boolean {
    return this.wave.every((node) => this.verdicts.has(node) || this.held.has(node))
  }

  private judge(node: string): void {
    if (this.revisionHash === undefined || !this.started.has(node) || this.verdicts.has(node)) return
    const verdict = judgeKataDeployPods(this.onNode.get(node) ?? [], node, this.revisionHash)
    if (verdict) this.settle(node, verdict)
  }

  /** Each watch event: the wave's pods by node, each judged. */
  private decide(current: PodView[]): true | undefined {
    this.listed(current)
    this.onNode = new Map()
    for (const pod of current) {
      if (pod.nodeName === undefined || !this.inWave.has(pod.nodeName)) continue
      const pods = this.onNode.get(pod.nodeName)
      if (pods) pods.push(pod)
      else this.onNode.set(pod.nodeName, [pod])
    }
    for (const node of this.onNode.keys()) this.judge(node)
    return this.settledAll() ? true : undefined
  }

  /**
   * A node let through (or held back) after the last event, or every node once the revision is
   * known: judged from the pods last seen, without going over the release's pods again.
   */
  private recheck(...nodes: string[]): void {
    for (const node of nodes) this.judge(node)
    if (this.settledAll()) this.stop.abort(SETTLED)
  }
}
