import semver from 'semver'
import type { NodeView, RunSettings } from '../../ports/cluster.port.js'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { InputError, PreconditionError } from '../errors.js'
import { checkHelmVersion } from '../checks/helm-version.js'
import { acquireLock } from '../run/lock.js'
import { checkNamespace, checkReleaseRef } from '../checks/names.js'
import type { DeploymentStrategy } from '../modes/strategy.js'
import { Annotation, isOtherInstance, memoryFor, readStatus } from '../engine/node-state.js'
import { cordonedByUs, transition } from '../engine/node-ops.js'
import { newWaveState, runHandlers, waveSettings } from '../engine/phases.js'
import type { LifecycleReport, NodeResult } from '../run/report.js'
import { checkChart, checkRelease, releaseStrategy, versionBefore } from '../checks/release-checks.js'
import { fromStorageOrHelm } from '../checks/release-read.js'
import { restoreWhenConverged } from '../run/restore.js'
import { openRun } from '../run/open.js'
import { newRecord } from '../run/record.js'
import { groupByPool, podFor, type Pool } from '../run/pools.js'
import type { PolicyInEffect } from '../policy/policy.js'
import { checkSchedulable, parseVerificationTemplate, type VerificationTemplate } from '../engine/verification.js'

export interface RollbackRequest {
  node: string
  release: ReleaseRef
  chart: string
  /** Explicit version to go back to; otherwise the node's recorded previous version, else helm history. */
  toVersion?: string
  verification?: { source: string; origin: string; namespace: string; timeoutMs: number }
  /** The policy's pools: a node in a pool with its own verification pod is verified with that one. */
  pools?: { pools: Pool[]; namespace: string; timeoutMs: number }
  readyTimeoutMs: number
  helmTimeout: string
  /** The fleet policy the request's defaults came from: named in the run's first line and its report. */
  policy: PolicyInEffect
}

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
  const plan = await planRollback(deps, request)
  const { release, node, toVersion, instance } = plan
  // One writer at a time: a rollback never races an upgrade of the same release.
  const lock = await acquireLock(deps, request.release, holder)
  try {
    const recorded = await deps.cluster.readRun(request.release.namespace, request.release.name)
    // Another install's record keeps nothing of this one's: not its values, not its rollback target.
    const unfinished = isOtherInstance(recorded?.releaseInstance, instance) ? undefined : recorded
    const settings = rollbackSettings(request, plan.verification)
    // Kept when no unfinished run has one: the operator's values, captured before the first helm upgrade.
    const record = newRecord({
      runId,
      holder,
      release,
      mode: plan.strategy.mode,
      targetVersion: release.chartVersion,
      previousVersion: toVersion,
      chart: request.chart,
      previousChart: request.chart,
      // Captured once: after an earlier rollback the release's values carry kata-lcm's overrides.
      userValues: unfinished?.userValues ?? (await deps.helm.values(release.name, release.namespace, { all: false })),
      startedAt: deps.clock.now().toISOString(),
      waves: [[node.name]],
      settings,
      policy: request.policy.name,
      releaseInstance: instance,
    })
    // Kept unless an unfinished run's record is there (it keeps the operator's values until they are back).
    if (!unfinished) await deps.cluster.writeRun(record)
    // The rollback runs as its record says, opened the one way every run is.
    const { ctx } = openRun(deps, record)
    const wave = waveSettings(unfinished?.runId ?? runId, settings, plan.template, {
      verifyAfterRevert: plan.template !== undefined,
    })
    const state = newWaveState(ctx, wave, 1, [await markForRollback(deps, node, runId, toVersion, instance)])
    state.results.set(node.name, { name: node.name, status: 'rolling-back', error: 'rollback requested' })
    await runHandlers(state, 'rollback')
    const result = state.results.get(node.name) ?? { name: node.name, status: 'failed' as const, error: 'no result' }
    const restored = result.status === 'rolled-back' && (await restoreWhenConverged(ctx, request.chart, toVersion))
    return rollbackReport(request, plan, { runId, result, restored, helmCommands: ctx.helmCommands })
  } finally {
    await lock.release()
  }
}

/** What `rollback NODE` checked before any write: the release, its mode, the node and the version to go back to. */
interface RollbackPlan {
  release: ReleaseInfo
  strategy: DeploymentStrategy
  /** helm's first_deployed of this install of the release. */
  instance: string | undefined
  node: NodeView
  toVersion: string
  /** The node's verification pod (its pool's own, else the request's), if any. */
  template: VerificationTemplate | undefined
  verification: RunSettings['verification'] | undefined
}

/**
 * Everything `rollback NODE` checks before any write, with the checks an upgrade's planner makes
 * (release-checks.ts): the release, its mode, the node and its verification pod, the version to go
 * back to (--to-version, else the node's recorded previous version, else helm history) and its chart.
 * Read-only.
 */
async function planRollback(deps: LifecycleDeps, request: RollbackRequest): Promise<RollbackPlan> {
  checkReleaseRef(request.release)
  if (request.verification) checkNamespace('--verification-namespace', request.verification.namespace)
  if (request.toVersion !== undefined && semver.valid(request.toVersion) !== request.toVersion)
    throw new InputError('--to-version', `"${request.toVersion}" is not a semantic version; use e.g. 3.27.0`)
  const runTemplate = request.verification
    ? parseVerificationTemplate(request.verification.source, request.verification.origin)
    : undefined
  await checkHelmVersion(deps.helm)
  await deps.cluster.ping()
  const stored = fromStorageOrHelm(
    deps.cluster.helmStoredRelease(request.release.namespace, request.release.name),
    deps,
    request.release,
  )
  const release = checkRelease(request.release, await stored.release())
  const instance = await stored.instance()
  const found = await deps.cluster.getNode(request.node)
  if (!found) throw new InputError('NODE', `no node named "${request.node}" (kubectl get nodes lists them)`)
  // What kata-lcm wrote on the node for another install of the release is not its history here.
  const node = memoryFor(found, instance)
  const { template, verification } = nodePod(request, node, runTemplate)
  const strategy = releaseStrategy(release, await deps.helm.values(release.name, release.namespace, { all: true }))
  const toVersion =
    request.toVersion ??
    node.annotations[Annotation.previousVersion] ??
    (await versionBefore(deps, request.release, release.chartVersion))
  if (!toVersion) {
    throw new PreconditionError(
      `no earlier version is known for ${node.name}: kata-lcm never upgraded it and helm history holds no other chart version`,
      { suggestions: ['pass --to-version X.Y.Z'] },
    )
  }
  await checkChart(deps, request.chart, toVersion, '--chart')
  return { release, strategy, instance, node, toVersion, template, verification }
}

/** The node's verification pod: its pool's own, when it has one, else the request's; checked schedulable there. */
function nodePod(request: RollbackRequest, node: NodeView, runTemplate: VerificationTemplate | undefined) {
  const pool = request.pools && groupByPool([node], request.pools.pools).groups.find((g) => g.nodes.length > 0)?.pool
  const { template, field, own } = podFor(pool?.verification, runTemplate)
  const verification =
    own && pool?.verification
      ? {
          source: pool.verification.source,
          origin: pool.verification.origin,
          namespace: request.pools!.namespace,
          timeoutMs: pool.verification.timeoutMs ?? request.pools!.timeoutMs,
        }
      : request.verification
  if (template) {
    const problem = checkSchedulable(template, node)
    if (problem) throw new InputError(field, problem.replace(/^--verification-pod /, ''))
  }
  return { template, verification }
}

/** A one-node rollback's settings: no drain, the request's timeouts, the node's verification pod. Pure. */
function rollbackSettings(
  request: RollbackRequest,
  verification: RunSettings['verification'] | undefined,
): RunSettings {
  return {
    batchSize: 1,
    drain: false,
    drainTimeoutMs: request.readyTimeoutMs,
    readyTimeoutMs: request.readyTimeoutMs,
    helmTimeout: request.helmTimeout,
    verification: verification ?? { source: '', origin: '', namespace: 'default', timeoutMs: request.readyTimeoutMs },
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
