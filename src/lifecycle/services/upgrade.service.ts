import semver from 'semver'
import type { LifecycleDeps } from '../context.js'
import type { MaintenanceWindow, NodeView, RunRecord, RunSettings } from '../../ports/cluster.port.js'
import { acquireLock } from '../run/lock.js'
import { newWaveState, outcomes, runHandlers, type WaveSettings } from '../engine/phases.js'
import type { RunContext } from '../modes/strategy.js'
import { Annotation, readStatus } from '../engine/node-state.js'
import { checkPrerequisites, type RunPlan, type UpgradeRequest } from '../checks/prerequisites.js'
import { openRun, type OpenRun } from '../run/open.js'
import { listed, type LifecycleReport, type NodeResult, type Outcome } from '../run/report.js'
import { SKIP_LABEL } from '../run/plan.js'
import { checkRenders } from '../checks/renders.js'
import { restoreWhenConverged } from '../run/restore.js'
import { waitWhilePaused } from './pause.service.js'
import { waitForWindow } from '../gates/window-wait.js'
import { describeWindow, untilText, windowState } from '../gates/window.js'
import { runWave, type WaveResult } from '../engine/wave.js'
import { isKataRuntimeClass, recordWorkloads } from '../engine/workloads.js'
import { alertHold, AlertHoldTimeoutError, waitForAlerts, type AlertGate } from '../gates/alerts.js'

/**
 * `kata-lcm upgrade`: checks everything, then runs the waves in order and stops at the first wave
 * with a failure (its failed nodes rolled back, its passed nodes completed). Its first event names the
 * policy in effect. Safe to rerun: nodes completed on the target are skipped, interrupted ones go first.
 */
export async function upgrade(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  runId: string,
  signal?: AbortSignal,
  holder = runId,
): Promise<LifecycleReport> {
  deps.events.emit({ type: 'info', message: `policy: ${request.policy.name}` })
  const first = await checkPrerequisites(deps, request, runId)
  await checkRenders(openRun(deps, first.record).ctx, first.record.waves)
  if (request.dryRun) {
    const { ctx } = openRun(deps, first.record)
    announce(deps, first)
    const commands = first.strategy.plannedUpgrades(ctx, first.record.waves).map((u) => deps.helm.describeUpgrade(u))
    const planned = report(
      first,
      runId,
      request,
      'planned',
      baseResults(first),
      commands,
      'dry run: nothing was written',
    )
    // What would gate the run now.
    const gate = windowGate(request.windows, deps.clock.now())
    const alerts = request.alerts ? await alertGateNow(deps, request.alerts) : undefined
    planned.nextSteps.unshift(
      ...(gate ? [gate] : []),
      ...(alerts ? [alerts] : []),
      await workloadGate(deps, first.record.waves[0] ?? [], request),
    )
    return planned
  }
  if (first.nodes.length === 0 && !first.resumingRun) return nothingToDo(first, runId, request)
  const lock = await acquireLock(deps, request.release, holder)
  try {
    // Another run may have moved nodes between the first look and the lock: plan again under it,
    // reading again only what may have changed since.
    const plan = await checkPrerequisites(deps, request, runId, first)
    if (plan.nodes.length === 0 && !plan.resumingRun) return nothingToDo(plan, runId, request)
    announce(deps, plan)
    await deps.cluster.writeRun({ ...plan.record, holder })
    // The waves' pod watches run from the first wave to the last: no list or new watch per wave.
    const release = deps.cluster.keepWatches()
    try {
      return await runWaves(openRun(deps, plan.record, runId), plan, request, runId, signal, lock.lost)
    } finally {
      release()
    }
  } finally {
    await lock.release()
  }
}

/** Says what an earlier run left and what this one will do about it. */
function announce(deps: LifecycleDeps, plan: RunPlan): void {
  if (plan.staleRun) deps.events.emit({ type: 'warning', message: plan.staleRun })
  if (plan.alreadyDone.length > 0)
    deps.events.emit({
      type: 'info',
      message: `${plan.alreadyDone.length} node(s) already completed on ${plan.record.targetVersion} by an earlier run; skipping them: ${plan.alreadyDone.join(', ')}`,
    })
  if (plan.resumed.length > 0)
    deps.events.emit({
      type: 'info',
      message: `resuming ${plan.resumed.length} node(s) an interrupted run left mid-flight, first: ${plan.resumed.join(', ')}`,
    })
  if (plan.resumingRun)
    deps.events.emit({
      type: 'info',
      message: `resuming run ${plan.record.runId} (${plan.record.previousVersion} -> ${plan.record.targetVersion}); rollbacks go to ${plan.record.previousVersion}`,
    })
  for (const note of clusterWideChanges(plan.record)) deps.events.emit({ type: 'warning', message: note })
}

/** What the first wave's helm upgrade changes for every node at once (cluster-scoped objects). Pure. */
export function clusterWideChanges(run: Pick<RunRecord, 'previousVersion' | 'targetVersion'>): string[] {
  const crosses = (v: string) => semver.lt(run.previousVersion, v) && semver.gte(run.targetVersion, v)
  return crosses('4.1.0')
    ? [
        "at the first wave, kata-deploy 4.1.0's RuntimeClasses (cluster-scoped) start scheduling Kata pods only onto nodes its installer has labelled: until the last wave, new Kata pods land only on nodes already upgraded",
      ]
    : []
}

function nothingToDo(plan: RunPlan, runId: string, request: UpgradeRequest): LifecycleReport {
  return report(
    plan,
    runId,
    request,
    'nothing-to-do',
    baseResults(plan),
    [],
    summaryOf('nothing-to-do', plan, baseResults(plan)),
  )
}

async function runWaves(
  run: OpenRun,
  plan: RunPlan,
  request: UpgradeRequest,
  runId: string,
  signal: AbortSignal | undefined,
  lockLost: () => boolean,
): Promise<LifecycleReport> {
  const { ctx } = run
  const { deps } = ctx
  const results = baseResults(plan)
  const settingsOf = (wave: number) => run.settings(wave)
  const done = (outcome: Outcome) =>
    report(plan, runId, request, outcome, results, ctx.helmCommands, summaryOf(outcome, plan, results))
  // A run killed while rolling nodes back stopped there: finish that rollback and stop again.
  const midRollback = plan.nodes.filter((n) => readStatus(n.annotations) === 'rolling-back')
  if (midRollback.length > 0) return done(await finishRollback(ctx, midRollback, settingsOf(0), results))
  // With no node left, a resumed run only has its finalize to do.
  let outcome: Outcome = 'success'
  for (const [index, names] of plan.record.waves.entries()) {
    const stopped = await beforeWave(ctx, plan.record.settings, index + 1, signal, lockLost)
    if (stopped) {
      outcome = stopped
      break
    }
    const pool = plan.record.wavePools?.[index]
    deps.events.emit({
      type: 'wave-start',
      wave: index + 1,
      waves: plan.record.waves.length,
      nodes: names,
      ...(pool ? { pool } : {}),
    })
    const waveNodes = names.map((name) => plan.nodes.find((n) => n.name === name)!)
    const wave = await runWave(ctx, settingsOf(index + 1), index + 1, waveNodes)
    for (const r of wave.results) results.set(r.name, r)
    deps.events.emit({
      type: 'wave-end',
      wave: index + 1,
      passed: wave.passed,
      rolledBack: wave.rolledBack,
      failed: wave.failed,
    })
    const verdict = waveVerdict(wave, plan.record.settings)
    if (verdict === 'nodes-gone') outcome = verdict
    else if (verdict) {
      outcome = verdict
      break
    }
  }
  // The record (the operator's own values, the rollback target) stays until they are restored.
  if (outcome === 'success' || outcome === 'nodes-gone') await restoreWhenConverged(ctx, ctx.chart, ctx.targetVersion)
  // Every node of a failed canary back where it was: the release can have the operator's values back too.
  if (outcome === 'rolled-back') await restoreWhenConverged(ctx, ctx.previousChart, ctx.previousVersion)
  return done(outcome)
}

/** The rollback a killed run left unfinished, finished: `rolled-back`, or `manual-action` when a node's failed. */
async function finishRollback(
  ctx: RunContext,
  nodes: NodeView[],
  settings: WaveSettings,
  results: Map<string, NodeResult>,
): Promise<Outcome> {
  ctx.deps.events.emit({
    type: 'info',
    message: `finishing the interrupted rollback of ${nodes.map((n) => n.name).join(', ')}`,
  })
  const state = newWaveState(ctx, settings, 0, nodes)
  await runHandlers(state, 'rollback')
  for (const r of state.results.values()) results.set(r.name, r)
  return outcomes(state).failed.length > 0 ? 'manual-action' : 'rolled-back'
}

/**
 * The gates before wave `wave`, in order: a maintenance window (a wave starts only inside one),
 * `kata-lcm pause` (holds the next wave, never the one in progress), and, last, right before the
 * wave, the alert gate (bounded by its timeout). The outcome that stops the run here, if any.
 */
async function beforeWave(
  ctx: RunContext,
  settings: RunSettings,
  wave: number,
  signal: AbortSignal | undefined,
  lockLost: () => boolean,
): Promise<Outcome | undefined> {
  const { deps, release } = ctx
  await waitForWindow(deps, release, settings.windows, wave, signal)
  await waitWhilePaused(deps, release, wave, signal).catch((error: unknown) => {
    if (!signal?.aborted) throw error
  })
  try {
    await waitForAlerts(deps, release, settings.alerts, wave, signal)
  } catch (error) {
    if (!(error instanceof AlertHoldTimeoutError)) throw error
    deps.events.emit({ type: 'warning', message: error.message })
    return 'held-by-alerts'
  }
  return signal?.aborted || lockLost() ? 'interrupted' : undefined
}

/**
 * What a wave's result means for the run: stop (a failed rollback, a rollback, Kata workloads
 * disrupted under `stop`), or go on saying so at the end (`nodes-gone`: nothing on a deleted node
 * to judge), or nothing. Pure.
 */
function waveVerdict(wave: WaveResult, settings: RunSettings): Outcome | undefined {
  if (wave.failed.length > 0) return 'manual-action'
  if (wave.rolledBack.length > 0) return 'rolled-back'
  if (wave.disrupted.length > 0 && settings.onWorkloadDisruption === 'stop') return 'workloads-disrupted'
  return wave.gone.length > 0 ? 'nodes-gone' : undefined
}

function baseResults(plan: RunPlan): Map<string, NodeResult> {
  const results = new Map<string, NodeResult>()
  for (const name of plan.alreadyDone)
    results.set(name, { name, status: 'skipped', version: plan.record.targetVersion })
  for (const name of plan.excluded) results.set(name, { name, status: 'skipped', reason: `${SKIP_LABEL}=true` })
  for (const node of plan.nodes)
    results.set(node.name, {
      name: node.name,
      status: 'untouched',
      version: node.annotations[Annotation.currentVersion] ?? plan.record.previousVersion,
    })
  return results
}

function summaryOf(outcome: Outcome, plan: RunPlan, results: Map<string, NodeResult>): string {
  const count = (status: NodeResult['status']) => [...results.values()].filter((r) => r.status === status).length
  switch (outcome) {
    case 'success':
      return `all ${results.size - plan.excluded.length} selected node(s) run kata-deploy ${plan.record.targetVersion}${plan.excluded.length > 0 ? `; ${plan.excluded.length} kept out by ${SKIP_LABEL}=true: ${listed(plan.excluded)}` : ''}`
    case 'nodes-gone': {
      const gone = [...results.values()].filter((r) => r.status === 'gone').map((r) => r.name)
      return `${count('completed') + plan.alreadyDone.length} selected node(s) run kata-deploy ${plan.record.targetVersion}; ${gone.length} left during the run (deleted, or out of the release), not upgraded: ${listed(gone)}`
    }
    case 'nothing-to-do':
      return `nothing to do: every selected node already runs ${plan.record.targetVersion}`
    case 'rolled-back':
      return `stopped: ${count('rolled-back')} node(s) failed and were rolled back to ${plan.record.previousVersion}; ${count('completed') + plan.alreadyDone.length} on ${plan.record.targetVersion}, ${count('untouched')} not touched`
    case 'manual-action':
      return `stopped: ${count('failed')} node(s) failed and could NOT be rolled back; they stay cordoned and need manual action`
    case 'interrupted':
      return 'interrupted before the next wave'
    case 'held-by-alerts':
      return `stopped: firing alerts held the next wave for longer than the alert timeout; ${count('completed') + plan.alreadyDone.length} node(s) on ${plan.record.targetVersion}, ${count('untouched')} not touched`
    case 'workloads-disrupted': {
      const hit = [...results.values()].filter((r) => r.disruptedWorkloads).map((r) => r.name)
      return `stopped (on-workload-disruption: stop): running Kata pods did not come through the upgrade of ${listed(hit)}; ${count('completed') + plan.alreadyDone.length} node(s) on ${plan.record.targetVersion}, ${count('untouched')} not touched`
    }
    case 'planned':
      return 'dry run: nothing was written'
  }
}

function report(
  plan: RunPlan,
  runId: string,
  request: UpgradeRequest,
  outcome: Outcome,
  results: Map<string, NodeResult>,
  helmCommands: string[],
  summary: string,
): LifecycleReport {
  const nodes = [...results.values()]
  const kept = new Set(plan.excluded)
  const onTarget = nodes.filter((n) => n.version === plan.record.targetVersion).length
  // A node that left during the run (deleted, or out of the release) is no longer part of the fleet.
  const considered = nodes.filter((n) => !kept.has(n.name) && n.status !== 'gone').length
  const mixedFleet = outcome !== 'planned' && onTarget > 0 && onTarget < considered
  const nextSteps: string[] = []
  const rerun = 'rerun the same kata-lcm upgrade command: completed nodes are skipped'
  if (outcome === 'rolled-back') {
    nextSteps.push(
      "read the failed nodes' verification evidence below (or kubectl describe node NODE)",
      'fix the cause (runtime config, verification pod, image), then ' + rerun,
    )
    nextSteps.push(
      `or put the upgraded nodes back too: kata-lcm rollback NODE (for each node on ${plan.record.targetVersion})`,
    )
  }
  if (outcome === 'manual-action') {
    for (const n of nodes.filter((x) => x.status === 'failed'))
      nextSteps.push(
        `${n.name}: inspect (kubectl describe node ${n.name}; helm history ${plan.release.name} -n ${plan.release.namespace}), then kata-lcm rollback ${n.name}`,
      )
  }
  if (outcome === 'interrupted') nextSteps.push(rerun)
  if (outcome === 'held-by-alerts')
    nextSteps.push('see which alerts held the run (its last warning), and once they clear ' + rerun)
  if (outcome === 'workloads-disrupted')
    nextSteps.push(
      'find out why the named Kata pods restarted, died or vanished (kubectl describe node NODE: Event KataWorkloadsDisrupted)',
      `then ${rerun}, or put the nodes back: kata-lcm rollback NODE`,
    )
  if (outcome === 'planned')
    nextSteps.push(...clusterWideChanges(plan.record), 'run the same command without --dry-run to apply this plan')
  return {
    command: 'upgrade',
    runId,
    policy: request.policy.name,
    release: { name: plan.release.name, namespace: plan.release.namespace },
    mode: plan.strategy.mode,
    fromVersion: plan.record.previousVersion,
    targetVersion: plan.record.targetVersion,
    dryRun: request.dryRun,
    outcome,
    waves: plan.record.waves,
    ...(plan.record.wavePools ? { wavePools: plan.record.wavePools } : {}),
    rollout: {
      batchSize: plan.record.settings.batchSize,
      ...(request.canary !== undefined ? { canary: request.canary } : {}),
      ...(request.soakMs !== undefined ? { soakMs: request.soakMs } : {}),
      ...(plan.pools ? { pools: plan.pools } : {}),
      ...(request.maxUnavailable !== undefined ? { maxUnavailable: request.maxUnavailable } : {}),
    },
    nodes,
    helmCommands,
    mixedFleet,
    summary: mixedFleet
      ? `${summary}. The fleet is now MIXED: ${onTarget} node(s) on ${plan.record.targetVersion}, ${considered - onTarget} on older versions`
      : summary,
    nextSteps,
  }
}

/** The alert gate as a dry run's line: what Prometheus answers now. Read-only. */
async function alertGateNow(deps: LifecycleDeps, gate: AlertGate): Promise<string> {
  const held = await alertHold(deps, gate)
  return held
    ? `alert gate (${gate.url}): HELD now, wave 1 would wait: ${held}`
    : `alert gate (${gate.url}): clear now${gate.match ? ` (no firing alert matches ${gate.match})` : ' (no alert firing)'}`
}

/** The Kata workloads check as a dry run's line: the Kata pods running on wave 1's nodes now. Read-only. */
async function workloadGate(deps: LifecycleDeps, wave: readonly string[], request: UpgradeRequest): Promise<string> {
  const then =
    request.onWorkloadDisruption === 'stop'
      ? 'one that does not come through stops the run before the next wave'
      : 'one that does not come through is named (on-workload-disruption: report)'
  const classes = new Set((await deps.cluster.listRuntimeClasses()).filter(isKataRuntimeClass).map((rc) => rc.name))
  if (classes.size === 0) return 'Kata workloads: the cluster has no Kata RuntimeClass, so no running Kata pod to check'
  const pods = await Promise.all(wave.map((node) => deps.cluster.listPods({ fieldSelector: `spec.nodeName=${node}` })))
  const running = Object.keys(recordWorkloads(pods.flat(), classes)).length
  return `Kata workloads: ${running} running Kata pod(s) on wave 1's nodes now; each node's are recorded before its upgrade and checked after it, and ${then}`
}

/** The maintenance windows as a dry run's line: open now, or how long wave 1 would wait. Pure. */
function windowGate(windows: readonly MaintenanceWindow[] | undefined, now: Date): string | undefined {
  if (!windows || windows.length === 0) return undefined
  const state = windowState(windows, now)
  const which = windows.map(describeWindow).join('; ')
  return state.open
    ? `maintenance window (${which}): open now, wave 1 would start at once`
    : `maintenance window (${which}): closed now, wave 1 would wait ${untilText(now, state.opensAt)} (opens at ${state.opensAt.toISOString()})`
}
