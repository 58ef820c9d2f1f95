import type { NodeView, PodView, RunSettings } from '../../ports/cluster.port.js'
import { describeError, ManualActionError } from '../errors.js'
import { checkDrainable, drainNode, NO_FORCE, type DrainPolicy } from './drain.js'
import type { NodeOutcomes, RunContext, WaveHooks } from '../modes/strategy.js'
import { Annotation, readStatus, type NodeStatus } from './node-state.js'
import { releaseCordon, transition, type TransitionExtras } from './node-ops.js'
import type { NodeResult, VerificationEvidence } from '../run/report.js'
import type { VerificationTemplate } from './verification.js'
import { podFor } from '../run/pools.js'
import { startVerification, verifyNode, type VerificationSession, type VerificationSettings } from './verify-node.js'
import type { Phase } from './phase-names.js'
import {
  decodeWorkloads,
  describeDisruptions,
  disruptions,
  encodeWorkloads,
  isKataRuntimeClass,
  recordWorkloads,
  type Disruption,
  type WorkloadRecord,
} from './workloads.js'

type Annotations = Record<string, string | null>

export interface WaveSettings {
  runId: string
  drain: boolean
  drainTimeoutMs: number
  drainPolicy: DrainPolicy
  /** The user's verification pod; absent only for `rollback NODE` without one. */
  verification?: VerificationSettings
  /** `rollback NODE` with a verification pod: a reverted node is verified before it goes back in service. */
  verifyAfterRevert: boolean
  /** After each wave but the last (`waves`): the soak of its completed nodes in service. */
  soakMs?: number
  waves?: number
}

/**
 * One wave's nodes as the cluster says they are. Every handler reads and writes it, and records its
 * outcome on the nodes themselves (a failed node moves to `rolling-back` with its last error at
 * once), so the handlers can run in one process (the CLI) or one step per Argo pod.
 */
export interface WaveState {
  ctx: RunContext
  settings: WaveSettings
  wave: number
  nodes: Map<string, NodeView>
  results: Map<string, NodeResult>
  /**
   * Whether the wave's verification starts during its upgrade (one process runs both, as the CLI
   * does): each node's pod is created as soon as the node is Ready on the new version.
   */
  verifyAsReady?: boolean
  /**
   * In one process without drain, `upgrade` runs beside `prepare` (the strategy's reads run
   * meanwhile): each node's upgrade waits until the node is `cordoned`, as the cluster answered the
   * cordon (`untilCordoned`). Set by the runner while `prepare` may still write.
   */
  cordoning?: NodeWaits
  /** The wave's verification pods, once started (by `upgrade` when `verifyAsReady`, else by `verify`). */
  verification?: { session: VerificationSession; completing: Promise<void>[] }
  /** Nodes deleted during the wave: in no handler's bucket from then on, reported `gone`. */
  gone: Set<string>
  /** The Kata RuntimeClasses' names, once read (`kataClasses`). */
  kataClasses?: Promise<ReadonlySet<string>>
}

/**
 * Waiters on the wave's nodes' states: each is asked again whenever a node's state changes (as the
 * cluster answered a write), and once more when no more writes will come (`closed`).
 */
export interface NodeWaits {
  waiters: Set<() => boolean>
  closed: boolean
}

/**
 * Whether `name` is past its cordon, from its state as the cluster last answered: true once
 * `prepare` no longer acts on it (it is `cordoned`, or was past that already), false once it
 * failed, was deleted, or the writes that could cordon it are over. At once without a `cordoning`
 * (nothing runs beside this handler: the runner gave it only nodes past the cordon).
 */
function untilCordoned(state: WaveState, name: string): Promise<boolean> {
  const waits = state.cordoning
  if (!waits) return Promise.resolve(true)
  return new Promise((resolve) => {
    const answered = () => {
      const node = state.nodes.get(name)!
      if (state.gone.has(name) || statusOf(node) === 'rolling-back') resolve(false)
      else if (!preparesNode(node, state)) resolve(true)
      else if (waits.closed) resolve(false)
      else return false
      return true
    }
    if (!answered()) waits.waiters.add(answered)
  })
}

/** A node's state as the cluster answered a write: every waiter asks again. */
function setNode(state: WaveState, name: string, node: NodeView): void {
  state.nodes.set(name, node)
  askAgain(state.cordoning)
}

function askAgain(waits: NodeWaits | undefined): void {
  if (waits) for (const answered of [...waits.waiters]) if (answered()) waits.waiters.delete(answered)
}

/**
 * The wave settings of a run: its recorded options, the run id and the verification pod: the
 * wave's pool's own (`options.pool`) when it has one, else the run's parsed `template`. Pure.
 */
export function waveSettings(
  runId: string,
  s: RunSettings,
  template: VerificationTemplate | undefined,
  options: { verifyAfterRevert?: boolean; waves?: number; pool?: string | undefined } = {},
): WaveSettings {
  const own = options.pool === undefined ? undefined : s.poolVerification?.[options.pool]
  const pod = podFor(own, template).template
  return {
    runId,
    drain: s.drain,
    drainTimeoutMs: s.drainTimeoutMs,
    drainPolicy: s.drainPolicy ?? NO_FORCE,
    ...(pod
      ? {
          verification: {
            template: pod,
            namespace: s.verification.namespace,
            timeoutMs: own?.timeoutMs ?? s.verification.timeoutMs,
          },
        }
      : {}),
    verifyAfterRevert: options.verifyAfterRevert ?? false,
    ...(s.soakMs ? { soakMs: s.soakMs } : {}),
    ...(options.waves !== undefined ? { waves: options.waves } : {}),
  }
}

export function newWaveState(
  ctx: RunContext,
  settings: WaveSettings,
  wave: number,
  nodes: readonly NodeView[],
): WaveState {
  return {
    ctx,
    settings,
    wave,
    nodes: new Map(nodes.map((n) => [n.name, n])),
    results: new Map(),
    gone: new Set(),
  }
}

/** The Argo step (`kata-lcm step <step> --wave N`) a handler runs in. */
export type WaveStep = 'prepare' | 'upgrade' | 'verify' | 'rollback'

/**
 * One phase of a wave, as NVIDIA's upgrade state machine has them: it declares the node states it
 * acts on and the state it moves them to; the runner buckets the wave's nodes by state and gives
 * the handler only its bucket. A node already past the handler is never in its bucket, so running
 * any handler (or any step) again is harmless by construction.
 */
interface WaveHandler {
  step: WaveStep
  /** The states a node is in after this handler's work (a node that fails goes to `rolling-back`). */
  leavesIn: readonly NodeStatus[]
  /** Whether this handler acts on the node now. Pure. */
  acts(node: NodeView, state: WaveState): boolean
  /** The work over the bucket. Records each node's outcome on the node; never throws for a node's failure. */
  run(state: WaveState, bucket: string[]): Promise<void>
}

const statusOf = (node: NodeView) => readStatus(node.annotations)

/** The `prepare` handler's bucket: a node this run has not cordoned yet. Pure. */
function preparesNode(node: NodeView, state: WaveState): boolean {
  const status = statusOf(node)
  // Completed by an earlier run: again when on another version, or (planned into a wave because
  // the cluster shows it is not on the target after all) when another run completed it.
  if (status === 'completed')
    return (
      node.annotations[Annotation.currentVersion] !== state.ctx.targetVersion ||
      node.annotations[Annotation.runId] !== state.settings.runId
    )
  return status === undefined || status === 'preparing' || status === 'rolled-back'
}

/**
 * The wave, in order. The CLI runs every handler in one process; `kata-lcm step <step>` runs those
 * of one step; the progress display lists these phases; the chart's run-wave lists the steps (a unit
 * test holds it to WAVE_STEPS). A phase is added here and nowhere else in the domain.
 */
const HANDLERS = {
  /**
   * Records the run, the node's prior schedulability and the version to return to, and cordons the
   * node: one merge patch, so the record and the cordon land together or not at all (no new
   * workload lands on the node from here on). A node left `preparing` by an earlier kata-lcm, which
   * wrote the two apart, keeps what it recorded.
   */
  prepare: {
    step: 'prepare',
    leavesIn: ['cordoned'],
    acts: (node, state) => preparesNode(node, state),
    run: async (state, bucket) => {
      const cordons = eachNode(state, bucket, async (name) => {
        const { ctx, settings } = state
        const node = state.nodes.get(name)!
        // A `preparing` node of this run already recorded these; reading them again would see nothing new.
        const again =
          statusOf(node) === 'preparing' &&
          node.annotations[Annotation.runId] === settings.runId &&
          node.annotations[Annotation.wasUnschedulable] !== undefined
        const recorded = node.annotations[Annotation.currentVersion]
        const previous =
          statusOf(node) === 'completed' && recorded && recorded !== ctx.targetVersion ? recorded : ctx.previousVersion
        const wasUnschedulable = again ? node.annotations[Annotation.wasUnschedulable] === 'true' : node.unschedulable
        await write(state, name, 'cordoned', {
          message: `kata-lcm run ${settings.runId}: ${ctx.previousVersion} -> ${ctx.targetVersion}; ${wasUnschedulable ? 'was already unschedulable, kata-lcm will leave it cordoned' : 'cordoned by kata-lcm'}`,
          unschedulable: true,
          annotations: {
            [Annotation.runId]: settings.runId,
            [Annotation.targetVersion]: ctx.targetVersion,
            ...(ctx.releaseInstance ? { [Annotation.releaseInstance]: ctx.releaseInstance } : {}),
            [Annotation.lastError]: null,
            [Annotation.cordonedByUs]: wasUnschedulable ? null : 'true',
            ...(again
              ? {}
              : { [Annotation.wasUnschedulable]: String(node.unschedulable), [Annotation.previousVersion]: previous }),
          },
        })
      })
      await Promise.all(cordons.values())
    },
  },
  /** Optional: evicts the workloads through the Eviction API (a rerun evicts what is left). */
  drain: {
    step: 'prepare',
    leavesIn: ['draining'],
    acts: (node, state) => state.settings.drain && (statusOf(node) === 'cordoned' || statusOf(node) === 'draining'),
    run: (state, bucket) =>
      each(state, bucket, async (name) => {
        if (statusOf(state.nodes.get(name)!) !== 'draining')
          await write(state, name, 'draining', { message: 'evicting workloads' })
        await drainNode(state.ctx.deps, name, state.settings.drainTimeoutMs, state.settings.drainPolicy)
      }),
  },
  /**
   * The strategy rolls the new kata-deploy onto the bucket. Each node is marked `upgrading` before
   * the strategy changes it (while the strategy reads), and moves on to `verifying` as soon as it is
   * Ready on the new version, while the others are still rolling.
   */
  upgrade: {
    step: 'upgrade',
    leavesIn: ['verifying'],
    acts: (node, state) => {
      const status = statusOf(node)
      return (
        status === 'upgrading' ||
        status === 'draining' ||
        (status === 'cordoned' && !state.settings.drain) ||
        // Beside `prepare`: the nodes it is about to cordon.
        (state.cordoning !== undefined && preparesNode(node, state))
      )
    },
    run: async (state, bucket) => {
      const { ctx } = state
      // Read while prepare cordons, so each node's Kata pods are listed as soon as it is cordoned
      // (a failed read fails the nodes where it is awaited, in `starting`).
      kataClasses(state).catch(() => undefined)
      // Every write to a node is chained on its previous one: a node's writes never race.
      const writes = new Map<string, Promise<boolean>>()
      const then = (name: string, work: () => Promise<boolean>) => {
        const previous = writes.get(name) ?? untilCordoned(state, name)
        const next = previous.then((ok) => (ok ? work() : false))
        writes.set(name, next)
        return next
      }
      const moveOn = (name: string, to: NodeStatus, message: string, annotations?: () => Promise<Annotations>) =>
        then(name, () =>
          statusOf(state.nodes.get(name)!) === to
            ? Promise.resolve(true)
            : (annotations?.() ?? Promise.resolve({}))
                .then((extra) => write(state, name, to, { message, annotations: extra }))
                .then(
                  () => true,
                  (error: unknown) => fail(state, name, describeError(error)).then(() => false),
                ),
        )
      const ready = `kata-deploy ${ctx.targetVersion} is ready on the node; verifying`
      const session = state.verifyAsReady && state.settings.verification ? verification(state).session : undefined
      // Once per node: from its `settled` or after the strategy returned, whichever comes first.
      const toVerifying = new Map<string, Promise<void>>()
      const verifying = (name: string) => {
        const moving =
          toVerifying.get(name) ??
          moveOn(name, 'verifying', ready).then((ok) => {
            if (ok) session?.add(name)
          })
        toVerifying.set(name, moving)
        return moving
      }
      const hooks: WaveHooks = {
        // The node's running Kata pods are recorded with `upgrading`, before its kata-deploy changes.
        starting: (name) =>
          moveOn(name, 'upgrading', `rolling kata-deploy ${ctx.targetVersion} onto the node`, () =>
            kataWorkloadsOn(state, name).then((record) => ({
              [Annotation.kataWorkloads]: Object.keys(record).length > 0 ? encodeWorkloads(record) : null,
            })),
          ),
        settled: (name, outcome) => {
          if (outcome.ok) void verifying(name)
        },
      }
      let outcomes: NodeOutcomes
      try {
        outcomes = await ctx.strategy.upgradeWave(ctx, bucket, hooks)
      } catch (error) {
        await Promise.all(writes.values())
        // The strategy found the fleet harmed beyond this wave: stop here, with the wave's nodes left cordoned.
        if (error instanceof ManualActionError) throw error
        outcomes = new Map(bucket.map((n) => [n, { ok: false, reason: describeError(error) }]))
      }
      await Promise.all([...writes.values(), ...bucket.map((name) => untilCordoned(state, name))])
      await Promise.all(
        bucket.map(async (name) => {
          if (state.gone.has(name) || statusOf(state.nodes.get(name)!) === 'rolling-back') return
          const outcome = outcomes.get(name) ?? { ok: false, reason: 'the strategy returned no result' }
          if (!outcome.ok) {
            if (outcome.gone === 'left') return handBack(state, name, outcome.reason)
            return outcome.gone ? markGone(state, name, outcome.reason) : fail(state, name, outcome.reason)
          }
          await verifying(name)
        }),
      )
    },
  },
  /**
   * The user's verification pod on every node of the bucket, watched together (those `upgrade`
   * started are in the bucket too); a node that passes goes back in service at once (`complete`:
   * uncordoned only if kata-lcm cordoned it, annotated with the new version), while the others
   * still verify. A node whose pod passed and whose completion could not be written is failed as
   * any other write is: nothing in this process stands in for what the cluster says of it.
   */
  verify: {
    step: 'verify',
    leavesIn: ['completed'],
    acts: (node, state) => statusOf(node) === 'verifying' || state.verification?.session.has(node.name) === true,
    run: async (state, bucket) => {
      const { session, completing } = verification(state)
      for (const name of bucket) session.add(name)
      const outcomes = await session.close().catch((error: unknown) => error as Error)
      state.verification = undefined
      await Promise.all(completing)
      // A watch that failed outright fails the nodes it had not passed yet (still `verifying`); those it passed are completed.
      if (outcomes instanceof Error) {
        for (const name of bucket.filter((n) => statusOf(state.nodes.get(n)!) === 'verifying'))
          await fail(state, name, describeError(outcomes))
        return
      }
      for (const [name, outcome] of outcomes) if (!outcome.ok) await fail(state, name, outcome.reason, outcome.evidence)
    },
  },
  /**
   * Optional, after each wave but the last: the wave's completed nodes stay in service for the soak,
   * watched, and are re-checked (node Ready, kata-deploy healthy and the same as at the start: not
   * restarted, not replaced) on each change and at the end. A node that degraded is cordoned again
   * and rolled back at once, like a failed verification; the others are then not soaked.
   */
  soak: {
    step: 'verify',
    leavesIn: ['completed'],
    acts: (node, state) =>
      soaks(state) &&
      statusOf(node) === 'completed' &&
      node.annotations[Annotation.runId] === state.settings.runId &&
      node.annotations[Annotation.soakedInRun] !== state.settings.runId,
    run: (state, bucket) => soak(state, bucket),
  },
  /** Reverts the failed nodes with the strategy: `rolled-back` and back in service, or `failed` and left cordoned. */
  rollback: {
    step: 'rollback',
    leavesIn: ['rolled-back', 'failed'],
    acts: (node) => statusOf(node) === 'rolling-back',
    run: (state, bucket) => rollBack(state, bucket),
  },
} satisfies Record<Phase, WaveHandler>

export type { Phase } from './phase-names.js'

/** The phases of a wave, in order. */
export const PHASES = Object.keys(HANDLERS) as Phase[]

/** The Argo steps of a wave, in order (each runs its phases). */
export const WAVE_STEPS: readonly WaveStep[] = [...new Set(PHASES.map((p) => HANDLERS[p].step))]

/** The state each phase leaves a node in, for docs and tests. */
export function phaseTable(): { phase: Phase; step: WaveStep; leavesIn: readonly NodeStatus[] }[] {
  return PHASES.map((phase) => ({ phase, step: HANDLERS[phase].step, leavesIn: HANDLERS[phase].leavesIn }))
}

/**
 * Runs the wave's handlers in order (only those of `step` when given), each over the nodes in the
 * states it acts on at that moment. Idempotent: a node already past a handler is left alone. With
 * drain on, throws a PreconditionError before the first write when a pod of the wave must not be
 * evicted.
 */
export async function runHandlers(state: WaveState, step?: WaveStep): Promise<void> {
  if (state.settings.drain && (step === undefined || step === HANDLERS.prepare.step)) {
    // The wave is refused as a whole, before its first cordon, when a pod on it must not be evicted.
    const fresh = [...state.nodes.values()].filter((n) => preparesNode(n, state)).map((n) => n.name)
    if (fresh.length > 0) await checkDrainable(state.ctx.deps, fresh, state.settings.drainPolicy, `wave ${state.wave}`)
  }
  state.verifyAsReady = step === undefined
  // One process without drain: each node's upgrade follows its own cordon, not the wave's last.
  const overlap = step === undefined && !state.settings.drain
  try {
    for (const phase of PHASES) {
      if (overlap && phase === 'upgrade') continue
      if (overlap && phase === 'prepare') {
        const cordoning: NodeWaits = { waiters: new Set(), closed: false }
        state.cordoning = cordoning
        // Asked before the cordons, not queued behind them: each node's upgrade needs it right after its own.
        kataClasses(state).catch(() => undefined)
        const prepare = runHandler(state, 'prepare', step).finally(() => {
          cordoning.closed = true
          askAgain(cordoning)
        })
        const upgrade = runHandler(state, 'upgrade', step)
        const [prepared, upgraded] = await Promise.allSettled([prepare, upgrade])
        state.cordoning = undefined
        for (const settled of [prepared, upgraded]) if (settled.status === 'rejected') throw settled.reason
        continue
      }
      await runHandler(state, phase, step)
    }
    if (step === undefined) checkLeft(state, `wave ${state.wave}`, state.nodes.keys(), WAVE_ENDS)
  } finally {
    // A wave stopped by an error after its verification started: its pods are judged and removed.
    const started = state.verification
    state.verification = undefined
    if (started)
      await started.session.close().then(
        () => Promise.all(started.completing),
        () => undefined,
      )
  }
}

/**
 * Holds the handlers to what they declare. An Argo step runs its handlers one after another, each
 * alone: each node of a handler's bucket (not deleted meanwhile) is left in one of its `leavesIn`
 * states, or `rolling-back` when it failed there. In one process the handlers overlap (a node is
 * upgraded once its own cordon landed, verified once its own kata-deploy is Ready), so the wave is
 * held to the end they lead to: every node `completed`, `rolled-back` or `failed`. Anything else is
 * kata-lcm's own bug, stopped here before a later handler or wave acts on a node in a state nobody
 * planned.
 */
export function checkLeft(
  state: WaveState,
  what: string,
  nodes: Iterable<string>,
  allowed: readonly NodeStatus[],
): void {
  for (const node of nodes) {
    if (state.gone.has(node)) continue
    const now = statusOf(state.nodes.get(node)!)
    if (now === undefined || !allowed.includes(now))
      throw new Error(`kata-lcm bug: ${what} left ${node} ${now ?? 'without a state'}, not ${allowed.join(' or ')}`)
  }
}

const WAVE_ENDS: readonly NodeStatus[] = ['completed', 'rolled-back', 'failed']

async function runHandler(state: WaveState, phase: Phase, step: WaveStep | undefined): Promise<void> {
  const handler: WaveHandler = HANDLERS[phase]
  if (step !== undefined && handler.step !== step) return
  const bucket = [...state.nodes.values()]
    .filter((n) => !state.gone.has(n.name) && handler.acts(n, state))
    .map((n) => n.name)
  if (bucket.length === 0) return
  state.ctx.deps.events.emit({ type: 'phase-start', wave: state.wave, phase, nodes: bucket })
  const before = new Set(bucket.filter((n) => statusOf(state.nodes.get(n)!) === 'rolling-back'))
  await handler.run(state, bucket)
  if (step !== undefined) checkLeft(state, `the ${phase} handler`, bucket, ['rolling-back', ...handler.leavesIn])
  const failures = bucket.flatMap((node) => {
    const now = statusOf(state.nodes.get(node)!)
    const failed = phase === 'rollback' ? now === 'failed' : now === 'rolling-back' && !before.has(node)
    return failed
      ? [
          {
            node,
            reason:
              state.results.get(node)?.error ?? state.nodes.get(node)!.annotations[Annotation.lastError] ?? 'failed',
          },
        ]
      : []
  })
  state.ctx.deps.events.emit({ type: 'phase-end', wave: state.wave, phase, nodes: bucket, failures })
}

/**
 * The wave's nodes that were rolled back, or whose rollback failed. Every node of a wave that got past
 * `prepare` is this run's, so a retried rollback step still sees the nodes an earlier attempt reverted.
 */
export function outcomes(state: WaveState): {
  rolledBack: string[]
  failed: string[]
  gone: string[]
  /** Completed in this run with Kata workloads that did not come through (named on the node). */
  disrupted: string[]
} {
  const nodes = [...state.nodes.values()].filter((n) => !state.gone.has(n.name))
  const names = (status: NodeStatus) => nodes.filter((n) => statusOf(n) === status).map((n) => n.name)
  const disrupted = nodes.filter(
    (n) =>
      statusOf(n) === 'completed' &&
      n.annotations[Annotation.runId] === state.settings.runId &&
      n.annotations[Annotation.disruptedWorkloads] !== undefined,
  )
  return {
    rolledBack: names('rolled-back'),
    failed: names('failed'),
    gone: [...state.gone],
    disrupted: disrupted.map((n) => n.name),
  }
}

async function write(state: WaveState, node: string, to: NodeStatus, extras: TransitionExtras): Promise<void> {
  setNode(state, node, await transition(state.ctx.deps, state.nodes.get(node)!, to, extras))
}

/** Records a node's failure on the node: `rolling-back` with the reason; the rollback handler reverts it. */
async function fail(state: WaveState, node: string, reason: string, evidence?: VerificationEvidence): Promise<void> {
  if (state.gone.has(node)) return
  state.results.set(node, { name: node, status: 'rolling-back', error: reason, ...(evidence ? { evidence } : {}) })
  await write(state, node, 'rolling-back', {
    message: `failed: ${reason}`,
    warning: true,
    annotations: { [Annotation.lastError]: oneLine(reason) },
  }).catch(async () => {
    // A node that cannot take the write because it no longer exists is gone, not rolling back.
    if ((await state.ctx.deps.cluster.getNode(node).catch(() => null)) === undefined)
      markGone(state, node, `${node} was deleted (${reason})`)
  })
}

/**
 * A node that left the release during its wave (its labels no longer match the release's
 * nodeSelector): no kata-deploy of this release will run there, so there is nothing to verify or
 * revert. It goes back as the operator left it: uncordoned only if kata-lcm cordoned it, kata-lcm's
 * in-flight status taken off (the last error says why), a Warning Event; then reported `gone`.
 */
async function handBack(state: WaveState, node: string, reason: string): Promise<void> {
  const { cluster } = state.ctx.deps
  const cordon = releaseCordon(state.nodes.get(node)!)
  const patched = await cluster
    .patchNode(node, {
      ...(cordon.unschedulable !== undefined ? { unschedulable: cordon.unschedulable } : {}),
      annotations: { ...cordon.annotations, [Annotation.status]: null, [Annotation.lastError]: oneLine(reason) },
    })
    .catch(() => undefined)
  if (patched) {
    setNode(state, node, patched)
    void cluster.recordNodeEvent(patched, { reason: 'KataUpgradeLeftRelease', message: reason, type: 'Warning' })
  }
  markGone(state, node, reason)
}

/**
 * A node deleted during the wave (an autoscaler's scale-down, a reclaimed spot instance): nothing on
 * it to verify or revert. Out of every bucket from now on, and reported `gone`, never as upgraded.
 */
function markGone(state: WaveState, node: string, reason: string): void {
  state.gone.add(node)
  askAgain(state.cordoning)
  state.results.set(node, { name: node, status: 'gone', error: reason })
  state.ctx.deps.events.emit({ type: 'warning', message: `wave ${state.wave}: ${reason}; it is not upgraded` })
}

/** Runs `work` on every node of the bucket concurrently; a node whose work throws is failed. Never throws. */
async function each(state: WaveState, bucket: string[], work: (node: string) => Promise<void>): Promise<void> {
  await Promise.all(eachNode(state, bucket, work).values())
}

/** `each`, with each node's outcome: true when its work succeeded, false once its failure is recorded. */
function eachNode(
  state: WaveState,
  bucket: string[],
  work: (node: string) => Promise<void>,
): Map<string, Promise<boolean>> {
  return new Map(
    bucket.map((node) => [
      node,
      work(node).then(
        () => true,
        async (error: unknown) => {
          if (statusOf(state.nodes.get(node)!) !== 'rolling-back') await fail(state, node, describeError(error))
          return false
        },
      ),
    ]),
  )
}

/** A verified node back in service: uncordoned only if kata-lcm cordoned it, annotated with the new version. */
async function complete(state: WaveState, name: string): Promise<void> {
  const { ctx } = state
  const cordon = releaseCordon(state.nodes.get(name)!)
  // A soak follows: it judges the node against the kata-deploy that was verified, read before the
  // node goes back in service (a change after this read is one the soak sees).
  const [verified, disrupted] = await Promise.all([
    soaks(state) ? ctx.strategy.health(ctx, [name]).then((h) => h.get(name)) : undefined,
    disruptedWorkloads(state, name),
  ])
  await write(state, name, 'completed', {
    message: `verified on ${ctx.targetVersion}`,
    ...cordon,
    annotations: {
      ...cordon.annotations,
      [Annotation.currentVersion]: ctx.targetVersion,
      [Annotation.lastError]: null,
      [Annotation.verifiedHealth]: verified?.ok ? verified.detail : null,
      [Annotation.kataWorkloads]: null,
      [Annotation.disruptedWorkloads]: disrupted.length > 0 ? describeDisruptions(disrupted) : null,
    },
  })
  state.results.set(name, {
    name,
    status: 'completed',
    version: ctx.targetVersion,
    ...(disrupted.length > 0 ? { disruptedWorkloads: disrupted.map((d) => `${d.pod} ${d.what}`) } : {}),
  })
  if (disrupted.length > 0) {
    const message = `Kata workloads did not come through the upgrade to ${ctx.targetVersion}: ${describeDisruptions(disrupted)}`
    ctx.deps.events.emit({ type: 'warning', message: `wave ${state.wave}: ${name}: ${message}` })
    void ctx.deps.cluster.recordNodeEvent(state.nodes.get(name)!, {
      reason: 'KataWorkloadsDisrupted',
      message,
      type: 'Warning',
    })
  }
}

/** The Kata RuntimeClasses' names, read once per wave (from the upgrade's start). */
function kataClasses(state: WaveState): Promise<ReadonlySet<string>> {
  state.kataClasses ??= state.ctx.deps.cluster
    .listRuntimeClasses()
    .then((classes) => new Set(classes.filter(isKataRuntimeClass).map((rc) => rc.name)))
  return state.kataClasses
}

/** The running Kata pods on a node, as recorded before its upgrade. */
async function kataWorkloadsOn(state: WaveState, name: string): Promise<WorkloadRecord> {
  const classes = await kataClasses(state)
  if (classes.size === 0) return {}
  return recordWorkloads(await state.ctx.deps.cluster.listPods({ fieldSelector: `spec.nodeName=${name}` }), classes)
}

/**
 * The recorded Kata pods of a verified node that did not come through. The node verified: a pod list
 * that fails is a warning, not the node's failure.
 */
async function disruptedWorkloads(state: WaveState, name: string): Promise<Disruption[]> {
  const before = decodeWorkloads(state.nodes.get(name)!.annotations[Annotation.kataWorkloads])
  if (!before || Object.keys(before).length === 0) return []
  try {
    return disruptions(before, await state.ctx.deps.cluster.listPods({ fieldSelector: `spec.nodeName=${name}` }))
  } catch (error) {
    state.ctx.deps.events.emit({
      type: 'warning',
      message: `wave ${state.wave}: ${name}: could not compare its Kata workloads with those before its upgrade: ${describeError(error)}`,
    })
    return []
  }
}

/** Whether this wave soaks: a soak is set and another wave follows. */
function soaks(state: WaveState): boolean {
  const { soakMs, waves } = state.settings
  return soakMs !== undefined && soakMs > 0 && waves !== undefined && state.wave < waves
}

type Health = Map<string, { ok: boolean; detail: string }>

async function soak(state: WaveState, bucket: string[]): Promise<void> {
  const { ctx, settings } = state
  const { clock, events } = ctx.deps
  const look = () => soakLook(state, bucket)
  // The soak is time in service; its nodes and their kata-deploy pods are watched meanwhile, so a
  // node that degrades is taken out of service at once, not when the dwell ends. The watches see
  // their first views before the first look: a change after that look is a change they see.
  const baseline: SoakBaseline = {}
  let watch = soakWatch(state, bucket, settings.soakMs!, baseline)
  const first = await watch.seen.then(look).catch((error: unknown) => {
    watch.stop()
    throw error
  })
  // Each node is judged against what was verified on it, where that was recorded, not against the
  // soak's first look: a pod replaced between the verification and this look is a change too.
  const before = new Map(first)
  for (const name of bucket) {
    const verified = state.nodes.get(name)?.annotations[Annotation.verifiedHealth]
    if (verified) before.set(name, { ok: true, detail: verified })
  }
  events.emit({
    type: 'info',
    message: `wave ${state.wave}: soaking ${bucket.length} node(s) in service for ${Math.round(settings.soakMs! / 1000)}s before wave ${state.wave + 1}`,
  })
  const deadline = clock.now().getTime() + settings.soakMs!
  let found = soakProblems(bucket, before, first)
  let whole = found.size === 0
  try {
    while (whole) {
      if (await watch.changed) {
        found = soakProblems(bucket, before, await look())
        whole = found.size === 0
      }
      const left = deadline - clock.now().getTime()
      if (!whole || left <= 0) break
      watch = soakWatch(state, bucket, left, baseline)
    }
  } finally {
    watch.stop()
  }
  // The re-check at the end stays.
  if (whole) found = soakProblems(bucket, before, await look())
  await Promise.all(bucket.map((name) => soakVerdict(state, name, found.get(name), whole)))
}

/** The soak's look at its nodes: Ready, and kata-deploy's health on each (its detail: the pod and restarts). */
async function soakLook(state: WaveState, bucket: string[]): Promise<Health> {
  const { ctx } = state
  const [health, nodes] = await Promise.all([
    ctx.strategy.health(ctx, bucket),
    ctx.deps.cluster.listNodes().then((all) => new Map(all.map((n) => [n.name, n]))),
  ])
  return new Map(
    bucket.map((name): [string, { ok: boolean; detail: string }] => {
      const node = nodes.get(name)
      if (!node) return [name, { ok: false, detail: 'the node is gone' }]
      if (node.ready === false) return [name, { ok: false, detail: 'the node is NotReady' }]
      return [name, health.get(name) ?? { ok: false, detail: 'no health reported' }]
    }),
  )
}

/** Each node's problem after the soak so far: unhealthy now or at the start, or kata-deploy changed. Pure. */
function soakProblems(bucket: string[], before: Health, after: Health): Map<string, string> {
  return new Map(
    bucket.flatMap((name): [string, string][] => {
      const [start, end] = [before.get(name)!, after.get(name)!]
      const problem = !end.ok
        ? end.detail
        : !start.ok
          ? start.detail
          : start.detail !== end.detail
            ? `kata-deploy changed during the soak: ${start.detail} -> ${end.detail}`
            : undefined
      return problem === undefined ? [] : [[name, problem]]
    }),
  )
}

/**
 * One node after the soak: passed (recorded on the node, when the whole soak ran), or degraded: out
 * of service again (kata-lcm uncordoned it at `complete`) and `rolling-back` with the problem.
 */
async function soakVerdict(state: WaveState, name: string, problem: string | undefined, whole: boolean): Promise<void> {
  const { ctx, settings } = state
  if (problem === undefined) {
    // A soak cut short by another node's failure is not passed: the node stays `completed`.
    if (whole)
      setNode(
        state,
        name,
        await ctx.deps.cluster.patchNode(name, { annotations: { [Annotation.soakedInRun]: settings.runId } }),
      )
    return
  }
  const node = state.nodes.get(name)!
  const ours = node.annotations[Annotation.wasUnschedulable] === 'false'
  state.results.set(name, { name, status: 'rolling-back', error: `degraded during the soak: ${problem}` })
  setNode(
    state,
    name,
    await transition(ctx.deps, node, 'rolling-back', {
      message: `failed: degraded during the soak: ${problem}`,
      warning: true,
      unschedulable: true,
      annotations: {
        [Annotation.lastError]: oneLine(`degraded during the soak: ${problem}`),
        [Annotation.cordonedByUs]: ours ? 'true' : null,
      },
    }),
  )
}

const noop = () => undefined

/** What the soak's watches last saw of its nodes and of their pods; kept from one wait to the next. */
interface SoakBaseline {
  nodes?: string
  pods?: string
}

/**
 * Watches the soaking nodes and the pods their health is read from: `changed` resolves true as soon
 * as one differs from `baseline` (set from the first views, then moved to what each change showed),
 * false when `ms` pass with no change; `seen` once every watch has its first view. One watch of the
 * nodes, one of the strategy's pods (shared with the run's other waits while it holds them).
 */
function soakWatch(
  state: WaveState,
  bucket: string[],
  ms: number,
  baseline: SoakBaseline,
): { seen: Promise<void>; changed: Promise<boolean>; stop: () => void } {
  const { ctx } = state
  const names = new Set(bucket)
  const query = ctx.strategy.healthPods(ctx)
  const keys: (keyof SoakBaseline)[] = query ? ['nodes', 'pods'] : ['nodes']
  let markSeen = () => {}
  const seen = new Promise<void>((resolve) => (markSeen = resolve))
  const changedFrom =
    <V>(key: keyof SoakBaseline, print: (views: V[]) => string) =>
    (views: V[]) => {
      const now = print(views)
      const last = baseline[key]
      baseline[key] = now
      if (keys.every((k) => baseline[k] !== undefined)) markSeen()
      return last !== undefined && now !== last ? true : undefined
    }
  const stop = new AbortController()
  const nodePrint = (nodes: NodeView[]) =>
    JSON.stringify(
      nodes
        .filter((n) => names.has(n.name))
        .map((n) => [n.name, n.ready, n.labels])
        .sort(),
    )
  const podPrint = (pods: PodView[]) =>
    JSON.stringify(
      pods
        .filter((p) => p.nodeName !== undefined && names.has(p.nodeName) && !p.deletionTimestamp)
        .map((p) => [p.nodeName, p.uid, p.ready, p.containers.map((c) => c.restartCount)])
        .sort(),
    )
  const waits = [
    ctx.deps.cluster.waitForNodes(undefined, changedFrom('nodes', nodePrint), ms, stop.signal),
    ...(query ? [ctx.deps.cluster.waitForPods(query, changedFrom('pods', podPrint), ms, stop.signal)] : []),
  ].map((wait) => wait.then((r) => r.done))
  const changed = Promise.race(waits).finally(() => stop.abort())
  // Stopped early (the soak ended another way), the waits reject with the abort: nothing to report.
  for (const wait of waits) void wait.catch(() => undefined)
  void changed.catch(() => undefined)
  return {
    seen: Promise.race([seen, changed.then(noop, noop)]),
    changed,
    stop: () => stop.abort(),
  }
}

async function rollBack(state: WaveState, names: string[]): Promise<void> {
  const { ctx } = state
  let reverted: NodeOutcomes
  try {
    reverted = await ctx.strategy.revertNodes(ctx, names)
  } catch (error) {
    if (error instanceof ManualActionError) throw error
    reverted = new Map(names.map((n) => [n, { ok: false, reason: describeError(error) }]))
  }
  for (const name of names) {
    const node = state.nodes.get(name)!
    const cause = state.results.get(name)?.error ?? node.annotations[Annotation.lastError] ?? 'failed'
    let evidence = state.results.get(name)?.evidence
    let outcome = reverted.get(name) ?? { ok: false, reason: 'the strategy returned no result' }
    if (outcome.ok && state.settings.verifyAfterRevert) {
      const verified = await verifyNode(ctx, verificationOf(state), name)
      outcome = verified
      evidence = verified.evidence ?? evidence
    }
    const previous = node.annotations[Annotation.previousVersion] ?? ctx.previousVersion
    if (outcome.ok) {
      const cordon = releaseCordon(node)
      await write(state, name, 'rolled-back', {
        message: `back on ${previous} after: ${cause}`,
        warning: true,
        ...cordon,
        annotations: { ...cordon.annotations, [Annotation.currentVersion]: previous },
      })
      state.results.set(name, {
        name,
        status: 'rolled-back',
        version: previous,
        error: cause,
        ...(evidence ? { evidence } : {}),
      })
    } else {
      const reason = `${cause}; rollback failed: ${outcome.reason}`
      await write(state, name, 'failed', {
        message: reason,
        warning: true,
        annotations: { [Annotation.lastError]: oneLine(reason) },
      })
      state.results.set(name, { name, status: 'failed', error: reason, ...(evidence ? { evidence } : {}) })
    }
  }
}

/** The wave's verification session, started on first use: a node that passes is completed at once. */
function verification(state: WaveState): NonNullable<WaveState['verification']> {
  if (state.verification) return state.verification
  const completing: Promise<void>[] = []
  const session = startVerification(state.ctx, verificationOf(state), [...state.nodes.keys()], (name) => {
    completing.push(each(state, [name], (node) => complete(state, node)))
  })
  state.verification = { session, completing }
  return state.verification
}

function verificationOf(state: WaveState): VerificationSettings {
  if (!state.settings.verification)
    throw new Error('kata-lcm bug: a verification was asked for without a verification pod')
  return state.settings.verification
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 500)
}
