import type { RunRecord } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import {
  LockedError,
  ManualActionError,
  NodesRolledBackError,
  PreconditionError,
  WorkloadsDisruptedError,
  describeError,
} from '../errors.js'
import { acquireLock } from '../run/lock.js'
import type { RunContext } from '../modes/strategy.js'
import { Annotation, isInFlight, memoryFor, readStatus } from '../engine/node-state.js'
import { transition } from '../engine/node-ops.js'
import {
  newWaveState,
  outcomes,
  runHandlers,
  type WaveSettings,
  type WaveState,
  type WaveStep,
} from '../engine/phases.js'
import { checkPrerequisites, type UpgradeRequest } from '../checks/prerequisites.js'
import { openRun, type OpenRun } from '../run/open.js'
import { waitWhilePaused } from './pause.service.js'
import { windowState } from '../gates/window.js'
import { markWindowWait, waitForWindow, windowWaitMessage } from '../gates/window-wait.js'
import { checkRenders } from '../checks/renders.js'
import { AlertHoldTimeoutError, checkAlertGate, waitForAlerts } from '../gates/alerts.js'
import { MAX_DURATION_MS, MAX_DURATION_TEXT } from '../settings/durations.js'
import { listed } from '../run/report.js'
import { restoreWhenConverged } from '../run/restore.js'

/**
 * The lifecycle cut into one call per Argo step. Every step is a separate process: it reads the run
 * record and the nodes from the cluster, runs its handlers over the nodes in the states they act on,
 * and writes the outcome back on the nodes: the very handlers the CLI's `upgrade` runs in one process.
 * A step retried after its pod was lost finds its nodes already past it and leaves them alone.
 */

/**
 * `step plan`: prerequisites, the lease (held by the workflow), run record. Its first event names the
 * policy in effect. Returns the wave count.
 */
export async function planStep(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  runId: string,
  holder: string,
): Promise<{ runId: string; waves: number; nodes: number; skipped: number; policy: string }> {
  deps.events.emit({ type: 'info', message: `policy: ${request.policy.name}` })
  const first = await checkPrerequisites(deps, request, runId)
  await checkRenders(openRun(deps, first.record).ctx, first.record.waves)
  return underLock(deps, request.release, holder, async () => {
    // As kata-lcm upgrade does: another run may have moved nodes between the first look and the lock.
    const plan = await checkPrerequisites(deps, request, runId, first)
    await deps.cluster.writeRun({ ...plan.record, holder })
    // Counts only: Argo caps a step's output at 256 kB, and a big fleet's names would not fit.
    return {
      runId: plan.record.runId,
      waves: plan.record.waves.length,
      nodes: plan.nodes.length,
      skipped: plan.alreadyDone.length,
      policy: request.policy.name,
    }
  })
}

/**
 * Runs one step's work under the workflow's lease (the CLI's lease: same TTL, renewed while the step
 * works however long it takes). Afterwards the lease stays with the workflow for its next step,
 * unless `releaseAfter` and the work succeeded.
 */
async function underLock<T>(
  deps: LifecycleDeps,
  release: ReleaseRef,
  holder: string,
  work: () => Promise<T>,
  releaseAfter = false,
): Promise<T> {
  const lock = await acquireLock(deps, release, holder)
  let ok = false
  try {
    const result = await work()
    ok = true
    return result
  } finally {
    await (ok && releaseAfter ? lock.release() : lock.keep())
  }
}

/** The run, from its record (`known`: as just read; else read now). */
async function loadRun(deps: LifecycleDeps, release: ReleaseRef, known?: RunRecord): Promise<OpenRun> {
  const record = known ?? (await deps.cluster.readRun(release.namespace, release.name))
  if (!record)
    throw new PreconditionError(
      `no kata-lcm run is in progress for ${release.namespace}/${release.name}; the workflow's plan step records one first`,
    )
  return openRun(deps, record)
}

async function waveState(
  deps: LifecycleDeps,
  ctx: RunContext,
  settings: WaveSettings,
  record: RunRecord,
  wave: number,
): Promise<WaveState> {
  const names = record.waves[wave - 1]
  if (!names) throw new PreconditionError(`--wave ${wave}: the run has ${record.waves.length} wave(s)`)
  const found = await Promise.all(names.map((name) => deps.cluster.getNode(name)))
  // A node deleted since the plan (an autoscaler's scale-down) has nothing left to upgrade or revert.
  const gone = names.filter((_, i) => !found[i])
  if (gone.length > 0)
    deps.events.emit({ type: 'warning', message: `wave ${wave}: ${listed(gone)} deleted since the plan; not upgraded` })
  return newWaveState(
    ctx,
    settings,
    wave,
    found.filter((n) => n !== undefined).map((n) => memoryFor(n, record.releaseInstance)),
  )
}

/**
 * Where a step's process spent its time, ms: before the wave's handlers (since the process started,
 * or with overlapping waves since its turn came), and in them.
 */
export interface StepTiming {
  beforeMs: number
  handlersMs: number
}

/** What a wave step runs: one step of the template's four, or the whole wave in one pod (`wave`). */
export type WaveStepName = WaveStep | 'wave'

/** How `waveStep` runs beyond one step of one wave. */
export interface WaveStepOptions {
  /**
   * Called with the step's node statuses once a wave ran (all its waves' so far), also when the step
   * then fails (rollback), and how long it took: before its first wave's handlers (from the
   * process's start: Node, the lease, the record, the nodes) and in its waves' handlers.
   */
  settled?: (nodes: Record<string, string>, timing: StepTiming) => void
  /**
   * Overlapping waves (`step wave --wait-turn`, the chart's overlapWaves): this pod started beside
   * the previous wave's. It waits for that wave's step to be over (`waitForTurn`), then asks the
   * gates itself (the template runs no gate steps then): the windows, a pause, the alerts.
   */
  overlap?: boolean
  /**
   * Several waves in one pod (`step wave --pod P --waves-per-pod K`, the chart's wavesPerPod): run
   * the waves from `wave` through this one (or the run's last), in order, each after its gates,
   * asked here (the template runs no gate steps then), as `kata-lcm upgrade` runs them.
   */
  through?: number
}

/**
 * `step prepare|upgrade|verify|rollback --wave N`: the handlers of one step over one wave. Node
 * failures are recorded on the nodes, not thrown; `rollback` reverts them, marks the run stopped (so
 * later waves refuse to start: fail-fast across steps) and fails the step, and a retry of it fails
 * the same way without reverting anything again. `step wave --wave N` runs them all in one process,
 * as `kata-lcm upgrade` runs a wave (the chart's `onePodPerWave`); a retry of it after one of its
 * nodes was rolled back in this run only finishes the rollback and fails the same way. With
 * `through`, `step wave` runs several waves so, and stops at the first that fails. Safe to rerun.
 */
export async function waveStep(
  deps: LifecycleDeps,
  release: ReleaseRef,
  wave: number,
  step: WaveStepName,
  holder: string,
  options: WaveStepOptions = {},
): Promise<{ wave: number; step: WaveStepName; nodes: Record<string, string> }> {
  const { settled, overlap = false, through } = options
  // With overlap, the step's own time starts at its turn (its start-up was hidden by the wave before).
  const turnAt = overlap ? await waitForTurn(deps, release, wave).then(() => performance.now()) : 0
  // The wave in progress: a step's own failure (overlapping) names it.
  let current = wave
  const failing = (error: unknown) => (overlap ? stopOverlap(deps, release, current, error) : Promise.reject(error))
  return underLock(deps, release, holder, async () => {
    const nodes: Record<string, string> = {}
    const timing: StepTiming = { beforeMs: 0, handlersMs: 0 }
    // Several waves in one process share their pod watches, as kata-lcm upgrade's do.
    const keep = deps.cluster.keepWatches()
    // The template runs gate steps only before a pod of one wave that did not start early.
    const gates = overlap || through !== undefined
    try {
      for (let last = through ?? wave; current <= last; current++) {
        const { record, state, began, ended } = await oneWave(deps, release, current, step, gates)
        last = Math.min(last, record.waves.length)
        for (const n of state.nodes.values()) nodes[n.name] = readStatus(n.annotations) ?? '-'
        if (current === wave) timing.beforeMs = Math.round(began - turnAt)
        timing.handlersMs += Math.round(ended - began)
        settled?.({ ...nodes }, { ...timing })
        if (step === 'rollback' || step === 'wave') await stopOnFailure(deps, release, record, state, current)
        // The workflow's waves overlap all or none: the next wave's pod waits for this.
        if (overlap) await markWaveDone(deps, release, current)
      }
    } finally {
      keep()
    }
    return { wave, step, nodes }
  }).catch(failing)
}

/**
 * One wave's step under the workflow's lease: its gates (before its first step; `gates`: all of them
 * asked here), its nodes, its handlers. Returns the record it ran from, the wave's state after the
 * handlers, and when they began and ended.
 */
async function oneWave(
  deps: LifecycleDeps,
  release: ReleaseRef,
  wave: number,
  step: WaveStepName,
  gates: boolean,
): Promise<{ record: RunRecord; state: WaveState; began: number; ended: number }> {
  const known = step === 'prepare' || step === 'wave' ? await beforeWave(deps, release, wave, gates) : undefined
  const { record, ctx, settings } = await loadRun(deps, release, known)
  if (record.stoppedBy && step !== 'rollback') {
    throw new NodesRolledBackError(`not starting wave ${wave}: the run stopped after ${record.stoppedBy}`)
  }
  const state = await waveState(deps, ctx, settings(wave), record, wave)
  const began = performance.now()
  try {
    await runHandlers(state, step === 'wave' ? (revertedInRun(state, record) ? 'rollback' : undefined) : step)
  } catch (error) {
    // Harm beyond the wave (ManualActionError): a retried step must not drive the release further.
    if (error instanceof ManualActionError) await markStopped(deps, release, `wave ${wave}: ${error.message}`)
    throw error
  }
  return { record, state, began, ended: performance.now() }
}

/**
 * An overlapping wave's step failed (Argo does not retry a step that failed on its own, only a lost
 * pod, which writes nothing): the run is marked stopped, so the next wave's pod, waiting for this
 * one's `wavesDone`, stops too rather than wait for a turn that never comes. Not when the lease is
 * another's: that run is not this step's to stop.
 */
async function stopOverlap(deps: LifecycleDeps, release: ReleaseRef, wave: number, error: unknown): Promise<never> {
  // The step's own error is what it ends on, whether the stop could be written or not.
  if (!(error instanceof LockedError))
    await markStopped(deps, release, `wave ${wave}: ${describeError(error)}`).catch(() => undefined)
  throw error
}

/**
 * Before a wave's first step: its gates. The template's suspend waited for the window (step
 * window); `argo resume` cuts a suspend short, so the wave still starts only inside one (this pod
 * then waits for it). A paused run holds its next wave here (a step in progress finishes). With
 * `alerts`, the alert gate too, held in this pod (CLI-like) until clear. Returns the record as read
 * once, while no gate waited or wrote since: the run's still.
 */
async function beforeWave(
  deps: LifecycleDeps,
  release: ReleaseRef,
  wave: number,
  alerts: boolean,
): Promise<RunRecord | undefined> {
  const planned = await deps.cluster.readRun(release.namespace, release.name)
  const windows = planned?.settings.windows
  await waitForWindow(deps, release, windows, wave)
  // Without windows the window gate neither waited nor wrote.
  const current = windows && windows.length > 0 ? undefined : planned
  await waitWhilePaused(deps, release, wave, undefined, current)
  const gate = planned?.settings.alerts
  if (alerts && gate) {
    await waitForAlerts(deps, release, gate, wave).catch((error: unknown) => stopHeld(deps, release, wave, error))
    return undefined
  }
  return current && !current.paused ? current : undefined
}

/** Alerts held the wave past the gate's timeout: the run is stopped, so no later step drives it further. */
async function stopHeld(deps: LifecycleDeps, release: ReleaseRef, wave: number, error: unknown): Promise<never> {
  if (error instanceof AlertHoldTimeoutError) await markStopped(deps, release, `wave ${wave}: ${error.message}`)
  throw error
}

/**
 * Marks the run stopped, on the record as it is now (the first stop stands): later waves, and a
 * later wave's pod waiting its turn, refuse to start.
 */
async function markStopped(deps: LifecycleDeps, release: ReleaseRef, reason: string): Promise<void> {
  const current = await deps.cluster.readRun(release.namespace, release.name)
  if (current && !current.stoppedBy) await deps.cluster.writeRun({ ...current, stoppedBy: reason })
}

/**
 * Overlapping waves: waits (a watch on the run record) until the previous wave's step is over
 * (`wavesDone`), before this step takes the workflow's lease; a run that stopped meanwhile, or
 * whose record is gone, starts no later wave.
 */
async function waitForTurn(deps: LifecycleDeps, release: ReleaseRef, wave: number): Promise<void> {
  const turn = await deps.cluster.waitForRun(
    release.namespace,
    release.name,
    (record) => {
      if (!record) return 'no run record'
      if (record.stoppedBy) return `the run stopped after ${record.stoppedBy}`
      return (record.wavesDone ?? 0) >= wave - 1 ? 'go' : undefined
    },
    MAX_DURATION_MS,
  )
  if (!turn.done)
    throw new PreconditionError(`wave ${wave}: wave ${wave - 1} did not finish within ${MAX_DURATION_TEXT}`)
  if (turn.value !== 'go') throw new NodesRolledBackError(`not starting wave ${wave}: ${turn.value}`)
}

/** The wave's step is over (overlapping waves): the record says so, for the next wave's pod waiting its turn. */
async function markWaveDone(deps: LifecycleDeps, release: ReleaseRef, wave: number): Promise<void> {
  const current = await deps.cluster.readRun(release.namespace, release.name)
  if (current && (current.wavesDone ?? 0) < wave) await deps.cluster.writeRun({ ...current, wavesDone: wave })
}

/**
 * Whether a node of the wave was already rolled back (or failed to be) in this run: a `step wave`
 * retried after it must not start that node over, only finish what is rolling back. Read from the
 * nodes, not from the step's memory.
 */
function revertedInRun(state: WaveState, record: RunRecord): boolean {
  return [...state.nodes.values()].some(
    (n) =>
      (readStatus(n.annotations) === 'rolled-back' || readStatus(n.annotations) === 'failed') &&
      n.annotations[Annotation.runId] === record.runId,
  )
}

/**
 * After a wave's last handlers: a node rolled back (or failed to be) marks the run stopped and fails
 * the step (later waves refuse to start); so do running Kata pods that did not come through, with
 * `on-workload-disruption: stop`.
 */
async function stopOnFailure(
  deps: LifecycleDeps,
  release: ReleaseRef,
  record: RunRecord,
  state: WaveState,
  wave: number,
): Promise<void> {
  const { rolledBack, failed, disrupted } = outcomes(state)
  if (rolledBack.length + failed.length > 0) {
    await markStopped(deps, release, `wave ${wave}: ${[...rolledBack, ...failed].join(', ')} failed`)
    const message = `wave ${wave}: rolled back ${rolledBack.join(', ') || 'none'}${failed.length ? `; rollback FAILED on ${failed.join(', ')}` : ''}`
    throw failed.length > 0 ? new ManualActionError(message) : new NodesRolledBackError(message)
  }
  if (disrupted.length > 0 && record.settings.onWorkloadDisruption === 'stop') {
    const message = `wave ${wave}: running Kata pods did not come through the upgrade of ${listed(disrupted)} (on-workload-disruption: stop)`
    await markStopped(deps, release, message)
    throw new WorkloadsDisruptedError(message)
  }
}

/**
 * `step window --wave N` (Argo, before the wave's first step): the seconds until one of the run's
 * maintenance windows opens, 0 when one is open or the run has none. A wait is recorded on the run
 * record (`status` shows it) and the template suspends that long: no pod runs while the run waits.
 */
export async function windowStep(
  deps: LifecycleDeps,
  release: ReleaseRef,
  wave: number,
  holder: string,
): Promise<number> {
  return underLock(deps, release, holder, async () => {
    const { record } = await loadRun(deps, release)
    if (record.stoppedBy)
      throw new NodesRolledBackError(`not starting wave ${wave}: the run stopped after ${record.stoppedBy}`)
    const windows = record.settings.windows ?? []
    const now = deps.clock.now()
    const state = windowState(windows, now)
    if (state.open) {
      await markWindowWait(deps, release, undefined)
      return 0
    }
    await markWindowWait(deps, release, { wave, opensAt: state.opensAt.toISOString() })
    deps.events.emit({ type: 'info', message: windowWaitMessage(windows, wave, now, state.opensAt) })
    return Math.ceil((state.opensAt.getTime() - now.getTime()) / 1000)
  })
}

/**
 * `step alerts --wave N` (Argo, before the wave's first step): the run's alert gate asked once.
 * Held: recorded on the run record, and the template asks again after a backoff (a retry of this
 * step: no pod runs meanwhile). Held past the gate's timeout: the run is stopped (AlertHoldTimeoutError,
 * exit 3), so no later step drives it further.
 */
export async function alertsStep(
  deps: LifecycleDeps,
  release: ReleaseRef,
  wave: number,
  holder: string,
): Promise<{ held: boolean; reason?: string }> {
  return underLock(deps, release, holder, async () => {
    const { record } = await loadRun(deps, release)
    if (record.stoppedBy)
      throw new NodesRolledBackError(`not starting wave ${wave}: the run stopped after ${record.stoppedBy}`)
    const gate = record.settings.alerts
    if (!gate) return { held: false }
    const check = await checkAlertGate(deps, release, gate, wave, record).catch((error: unknown) =>
      stopHeld(deps, release, wave, error),
    )
    return check.held ? { held: true, reason: check.reason } : { held: false }
  })
}

/** `step finalize`: after the last wave, the operator's values back, the record cleared, the lease released. */
export async function finalizeStep(deps: LifecycleDeps, release: ReleaseRef, holder: string): Promise<void> {
  await underLock(
    deps,
    release,
    holder,
    async () => {
      const { record, ctx } = await loadRun(deps, release)
      if (record.stoppedBy) throw new NodesRolledBackError(`the run stopped after ${record.stoppedBy}; not finalizing`)
      await restoreWhenConverged(ctx, ctx.chart, ctx.targetVersion)
    },
    true,
  )
}

/**
 * `step exit` (the workflow's exit handler): a step that died left nodes mid-flight; roll them back
 * so no node stays cordoned by kata-lcm, then release the lease. Safe to run after success (no-op).
 * A workflow that does not hold the lease, or did not plan the recorded run, touches nothing.
 */
export async function exitStep(
  deps: LifecycleDeps,
  release: ReleaseRef,
  holder: string,
): Promise<{ rolledBack: string[]; failed: string[] }> {
  const none = { rolledBack: [] as string[], failed: [] as string[] }
  try {
    return await underLock(
      deps,
      release,
      holder,
      async () => {
        const found = await deps.cluster.readRun(release.namespace, release.name)
        if (!found || found.holder !== holder) return none
        const { record, ctx, settings } = await loadRun(deps, release)
        const nodes = (await Promise.all(record.waves.flat().map((n) => deps.cluster.getNode(n)))).filter(
          (n) => n !== undefined,
        )
        const stranded = nodes.filter((n) => isInFlight(readStatus(n.annotations)))
        if (stranded.length === 0) return none
        const state = newWaveState(ctx, settings(0), 0, stranded)
        for (const node of stranded) {
          if (readStatus(node.annotations) !== 'rolling-back') {
            state.nodes.set(
              node.name,
              await transition(deps, node, 'rolling-back', {
                message: 'the workflow ended while this node was mid-flight',
                warning: true,
              }),
            )
          }
        }
        await runHandlers(state, 'rollback')
        await deps.cluster.writeRun({
          ...record,
          stoppedBy: `workflow exit: ${stranded.map((n) => n.name).join(', ')} were mid-flight`,
        })
        const { rolledBack, failed } = outcomes(state)
        return { rolledBack, failed }
      },
      true,
    )
  } catch (error) {
    // Another holder's lease: a workflow whose plan was refused the lock owns nothing here.
    if (error instanceof LockedError) return none
    throw error
  }
}
