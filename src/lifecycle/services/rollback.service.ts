import type { NodeView } from '../../ports/cluster.port.js'
import type { LifecycleDeps } from '../context.js'
import { acquireLock } from '../run/lock.js'
import { Annotation, readStatus } from '../engine/node-state.js'
import { cordonedByUs, transition } from '../engine/node-ops.js'
import { newWaveState, runHandlers, waveSettings } from '../engine/phases.js'
import type { LifecycleReport, NodeResult } from '../run/report.js'
import { restoreWhenConverged } from '../run/restore.js'
import { openRun } from '../run/open.js'
import { checkRollbackPrerequisites, type RollbackPlan } from '../checks/rollback-prerequisites.js'
import type { RollbackRequest } from '../settings/request.js'

/**
 * `kata-lcm rollback NODE`: a one-node run through the same rollback handler as the waves: cordon,
 * revert (restart or reinstall), wait, verify when a pod is given, uncordon only if kata-lcm cordoned
 * it, annotate `rolled-back`. The operator's values are captured in the run record before the first
 * helm upgrade (or taken from an unfinished run's record) and put back once every node is on one
 * version again. Its first event names the policy in effect. Safe to rerun.
 */
export async function rollbackNode(
  deps: LifecycleDeps,
  request: RollbackRequest,
  runId: string,
  holder = runId,
): Promise<LifecycleReport> {
  deps.events.emit({ type: 'info', message: `policy: ${request.policy.name}` })
  const first = await checkRollbackPrerequisites(deps, request, { runId, holder })
  // One writer at a time: a rollback never races an upgrade of the same release.
  const lock = await acquireLock(deps, request.release, holder)
  try {
    // Another run may have moved the node or the release between the first look and the lock: plan again under it.
    const plan = await checkRollbackPrerequisites(deps, request, { runId, holder }, first)
    const { node, toVersion, record, unfinished } = plan
    // Kept unless an unfinished run's record is there (it keeps the operator's values until they are back).
    if (!unfinished) await deps.cluster.writeRun(record)
    // The rollback runs as its record says, opened the one way every run is.
    const { ctx } = openRun(deps, record)
    const wave = waveSettings(unfinished?.runId ?? runId, record.settings, plan.template, {
      verifyAfterRevert: plan.template !== undefined,
    })
    const marked = await markForRollback(deps, node, runId, toVersion, record.releaseInstance)
    const state = newWaveState(ctx, wave, 1, [marked])
    state.results.set(node.name, { name: node.name, status: 'rolling-back', error: 'rollback requested' })
    await runHandlers(state, 'rollback')
    const result = state.results.get(node.name) ?? { name: node.name, status: 'failed' as const, error: 'no result' }
    const restored = result.status === 'rolled-back' && (await restoreWhenConverged(ctx, request.chart, toVersion))
    return rollbackReport(request, plan, { runId, result, restored, helmCommands: ctx.helmCommands })
  } finally {
    await lock.release()
  }
}

/** The report of `rollback NODE`: back in service, or stays cordoned for a person. Pure. */
function rollbackReport(
  request: RollbackRequest,
  plan: RollbackPlan,
  run: { runId: string; result: NodeResult; restored: boolean; helmCommands: string[] },
): LifecycleReport {
  const { release, node, toVersion } = plan
  const base = {
    command: 'rollback' as const,
    runId: run.runId,
    policy: request.policy.name,
    release: request.release,
    mode: plan.strategy.mode,
    fromVersion: release.chartVersion,
    targetVersion: toVersion,
    dryRun: false,
    waves: [[node.name]],
    helmCommands: run.helmCommands,
  }
  if (run.result.status !== 'rolled-back') {
    return {
      ...base,
      outcome: 'manual-action',
      mixedFleet: true,
      summary: `rollback of ${node.name} failed: ${run.result.error ?? 'unknown'}; the node stays cordoned`,
      nodes: [run.result],
      nextSteps: [
        `inspect: kubectl describe node ${node.name}; helm history ${release.name} -n ${request.release.namespace}`,
        `uncordon by hand once fixed: kubectl uncordon ${node.name}`,
      ],
    }
  }
  return {
    ...base,
    outcome: 'success',
    mixedFleet: !run.restored,
    summary:
      `${node.name} is back on kata-deploy ${toVersion}` +
      (run.restored
        ? `; every node runs ${toVersion} and the release has your own values back`
        : `; other nodes still run another version, so kata-lcm keeps your values in its run record until they are back on one version`),
    nodes: [{ name: node.name, status: 'rolled-back', version: toVersion }],
    nextSteps: run.restored
      ? []
      : [
          'kata-lcm status shows which nodes run which version',
          `kata-lcm rollback NODE for each, or kata-lcm upgrade --target-version ${release.chartVersion} to move the fleet forward again`,
        ],
  }
}

/** The node enters `rolling-back` on request: cordoned, and its prior schedulability recorded unless kata-lcm already knows it. */
async function markForRollback(
  deps: LifecycleDeps,
  node: NodeView,
  runId: string,
  toVersion: string,
  instance: string | undefined,
): Promise<NodeView> {
  if (readStatus(node.annotations) === 'rolling-back') return node
  const firstTouch = !cordonedByUs(node) && !node.unschedulable
  return transition(deps, node, 'rolling-back', {
    message: `kata-lcm run ${runId}: rolling back to ${toVersion} on request`,
    unschedulable: true,
    annotations: {
      [Annotation.runId]: runId,
      [Annotation.lastError]: null,
      [Annotation.previousVersion]: toVersion,
      ...(instance ? { [Annotation.releaseInstance]: instance } : {}),
      ...(node.unschedulable && !cordonedByUs(node) ? { [Annotation.wasUnschedulable]: 'true' } : {}),
      ...(firstTouch ? { [Annotation.wasUnschedulable]: 'false', [Annotation.cordonedByUs]: 'true' } : {}),
    },
  })
}
