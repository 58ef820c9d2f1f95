import type { NodeView, RunRecord } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { PreconditionError, TimeoutError } from '../errors.js'
import { checkReleaseRef } from '../checks/names.js'
import { Annotation, isInFlight, readStatus } from '../engine/node-state.js'
import { describeSelection, selectNodes, validateSelection, type NodeSelection } from '../run/plan.js'
import { countByState, type StatusReport } from './status.service.js'

/** What `status --watch` shows at one moment: the run in flight, its wave, the nodes per state. */
export interface WatchSnapshot {
  run?: {
    runId: string
    targetVersion: string
    startedAt: string
    /** The fleet policy the run was planned under (absent in records of earlier kata-lcm versions). */
    policy?: string
    paused?: { by: string; at: string }
    waitingForWindow?: { wave: number; opensAt: string }
    /** Firing alerts (the alert gate) hold the next wave: since when, and which. */
    heldByAlerts?: { wave: number; since: string; reason: string }
  }
  /**
   * The run's last wave with a node it touched (0 before its first), of its planned waves; `done`
   * the waves whose every node the run completed; `pool` the current wave's pool (with pools).
   */
  wave?: { current: number; total: number; done: number; pool?: string }
  counts: StatusReport['counts']
  selected: number
}

/**
 * How the watch ended: the run completed (no record left, every selected node `completed`), or a
 * node of the run watched was rolled back (`rolled-back`) or could not be (`manual-action`) and no
 * node of it is still in flight.
 */
export type WatchVerdict =
  | { outcome: 'completed'; runId?: string; snapshot: WatchSnapshot }
  | { outcome: 'rolled-back' | 'manual-action'; runId?: string; nodes: string[]; snapshot: WatchSnapshot }

/**
 * `kata-lcm status --watch`: follows the selected nodes and the run record through two watches
 * (no polling), calls `onChange` with each new snapshot and resolves with the verdict. Read-only.
 * The run watched is the one whose record it saw last; with none seen, the nodes are judged as they
 * stand (a node rolled back earlier fails the watch at once, every node completed ends it at 0).
 */
export async function watchStatus(
  deps: LifecycleDeps,
  release: ReleaseRef,
  selection: NodeSelection,
  onChange: (snapshot: WatchSnapshot) => void,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<WatchVerdict> {
  checkReleaseRef(release)
  validateSelection(selection)
  await deps.cluster.ping()
  const stop = new AbortController()
  const signal = options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal
  let nodes: NodeView[] | undefined
  let record: RunRecord | undefined
  let recordSeen = false
  let watchedRun: string | undefined
  let shown = ''
  let verdict: WatchVerdict | undefined
  let refusal: PreconditionError | undefined
  const step = (): WatchVerdict | undefined => {
    if (verdict || refusal || nodes === undefined || !recordSeen) return verdict
    watchedRun = record?.runId ?? watchedRun
    const selected = selectNodes(nodes, selection)
    if (shown === '' && selected.length === 0) {
      // As status: a selection that matches nothing is refused, not watched until the deadline.
      refusal = new PreconditionError(`no node matches ${describeSelection(selection)}`)
      stop.abort()
      return undefined
    }
    const snapshot = snapshotOf(selected, record)
    const key = JSON.stringify(snapshot)
    if (key !== shown) {
      shown = key
      onChange(snapshot)
    }
    verdict = judge(selected, record, watchedRun, snapshot)
    if (verdict) stop.abort()
    return verdict
  }
  const settled = await Promise.allSettled([
    deps.cluster.waitForNodes(
      selection.labelSelector,
      (views) => {
        nodes = views
        return step()
      },
      options.timeoutMs,
      signal,
    ),
    deps.cluster.waitForRun(
      release.namespace,
      release.name,
      (current) => {
        record = current
        recordSeen = true
        return step()
      },
      options.timeoutMs,
      signal,
    ),
  ])
  stop.abort()
  if (verdict) return verdict
  if (refusal) throw refusal
  // Not our own abort: a refused watch, the caller's signal, or the deadline.
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  throw new TimeoutError(
    `the run on ${describeSelection(selection)} did not end within ${Math.round(options.timeoutMs / 1000)}s`,
  )
}

/** The snapshot of the selected nodes and the run record. Pure. */
export function snapshotOf(selected: NodeView[], record: RunRecord | undefined): WatchSnapshot {
  const snapshot: WatchSnapshot = {
    counts: countByState(selected.map((n) => ({ status: readStatus(n.annotations) ?? '-' }))),
    selected: selected.length,
  }
  if (!record) return snapshot
  const ofRun = new Map(
    selected
      .filter((n) => n.annotations[Annotation.runId] === record.runId)
      .map((n) => [n.name, readStatus(n.annotations)]),
  )
  const started = record.waves.map((wave) => wave.some((n) => ofRun.has(n))).lastIndexOf(true) + 1
  const done = record.waves.filter((wave) => wave.every((n) => ofRun.get(n) === 'completed')).length
  const pool = record.wavePools?.[Math.max(started, 1) - 1]
  snapshot.run = {
    runId: record.runId,
    targetVersion: record.targetVersion,
    startedAt: record.startedAt,
    ...(record.policy ? { policy: record.policy } : {}),
    ...(record.paused ? { paused: record.paused } : {}),
    ...(record.waitingForWindow ? { waitingForWindow: record.waitingForWindow } : {}),
    ...(record.heldByAlerts ? { heldByAlerts: record.heldByAlerts } : {}),
  }
  snapshot.wave = { current: started, total: record.waves.length, done, ...(pool ? { pool } : {}) }
  return snapshot
}

/** The watch's verdict, or undefined while the run goes on. Pure. */
function judge(
  selected: NodeView[],
  record: RunRecord | undefined,
  runId: string | undefined,
  snapshot: WatchSnapshot,
): WatchVerdict | undefined {
  const ofRun = selected.filter((n) => runId === undefined || n.annotations[Annotation.runId] === runId)
  const failed = ofRun.filter((n) => readStatus(n.annotations) === 'failed').map((n) => n.name)
  const rolledBack = ofRun.filter((n) => readStatus(n.annotations) === 'rolled-back').map((n) => n.name)
  const settling = ofRun.some((n) => isInFlight(readStatus(n.annotations)))
  const run = runId !== undefined ? { runId } : {}
  if ((failed.length > 0 || rolledBack.length > 0) && !settling)
    return failed.length > 0
      ? { outcome: 'manual-action', ...run, nodes: failed, snapshot }
      : { outcome: 'rolled-back', ...run, nodes: rolledBack, snapshot }
  if (!record && selected.length > 0 && selected.every((n) => readStatus(n.annotations) === 'completed'))
    return { outcome: 'completed', ...run, snapshot }
  return undefined
}
