import semver from 'semver'
import type { NodeView, RunSettings } from '../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from './context.js'
import { describeError, InputError, PreconditionError } from './errors.js'
import { checkHelmVersion } from './helm-version.js'
import { acquireLock } from './lock.js'
import { checkNamespace, checkReleaseRef } from './names.js'
import { DEPLOYMENT_MODES, detectMode, isDeploymentMode, strategyFor } from './modes/index.js'
import type { RunContext } from './modes/strategy.js'
import { Annotation, isOtherInstance, memoryFor, readStatus } from './node-state.js'
import { cordonedByUs, transition } from './node-ops.js'
import { newWaveState, runHandlers, waveSettings } from './phases.js'
import type { LifecycleReport } from './report.js'
import { restoreWhenConverged } from './restore.js'
import { groupByPool, type Pool } from './pools.js'
import type { PolicyInEffect } from './policy.js'
import { checkSchedulable, parseVerificationTemplate } from './verification.js'

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
  signal?: AbortSignal,
  holder = runId,
): Promise<LifecycleReport> {
  deps.events.emit({ type: 'info', message: `policy: ${request.policy.name}` })
  checkReleaseRef(request.release)
  if (request.verification) checkNamespace('--verification-namespace', request.verification.namespace)
  const runTemplate = request.verification
    ? parseVerificationTemplate(request.verification.source, request.verification.origin)
    : undefined
  if (request.toVersion !== undefined && semver.valid(request.toVersion) !== request.toVersion)
    throw new InputError('--to-version', `"${request.toVersion}" is not a semantic version; use e.g. 3.27.0`)
  await checkHelmVersion(deps.helm)
  await deps.cluster.ping()
  const release = await deps.helm.release(request.release.name, request.release.namespace)
  if (!release)
    throw new PreconditionError(
      `--helm-release: no release "${request.release.name}" in namespace ${request.release.namespace}; check --helm-release and --helm-namespace`,
    )
  if (release.status !== 'deployed')
    throw new PreconditionError(`release ${release.name} is "${release.status}", not deployed`, {
      suggestions: [`helm history ${release.name} -n ${release.namespace}`],
    })
  const instance = await deps.helm.firstDeployed(release.name, release.namespace)
  const found = await deps.cluster.getNode(request.node)
  if (!found) throw new InputError('NODE', `no node named "${request.node}" (kubectl get nodes lists them)`)
  // What kata-lcm wrote on the node for another install of the release is not its history here.
  const node = memoryFor(found, instance)
  // The node's pool's own pod, when it has one; else the run-wide one.
  const pool = request.pools && groupByPool([node], request.pools.pools).groups.find((g) => g.nodes.length > 0)?.pool
  const own = pool?.verification?.source ? pool.verification : undefined
  const verification = own
    ? {
        source: own.source,
        origin: own.origin,
        namespace: request.pools!.namespace,
        timeoutMs: own.timeoutMs ?? request.pools!.timeoutMs,
      }
    : request.verification
  const template = own ? parseVerificationTemplate(own.source, own.origin) : runTemplate
  if (template) {
    const problem = checkSchedulable(template, node)
    if (problem)
      throw new InputError(own ? own.origin : '--verification-pod', problem.replace(/^--verification-pod /, ''))
  }
  const mode = detectMode(await deps.helm.values(release.name, release.namespace, { all: true }))
  if (!isDeploymentMode(mode))
    throw new PreconditionError(
      `release ${release.name} has deploymentMode "${mode}"; kata-lcm knows ${DEPLOYMENT_MODES.join(' and ')}`,
    )
  const strategy = strategyFor(mode)
  const toVersion =
    request.toVersion ??
    node.annotations[Annotation.previousVersion] ??
    (await previousFromHistory(deps, request.release, release.chartVersion))
  if (!toVersion) {
    throw new PreconditionError(
      `no earlier version is known for ${node.name}: kata-lcm never upgraded it and helm history holds no other chart version`,
      { suggestions: ['pass --to-version X.Y.Z'] },
    )
  }
  const chartInfo = await deps.helm.showChart(request.chart, toVersion).catch((error: unknown) => {
    throw new InputError(
      '--chart',
      `cannot read chart ${request.chart} at version ${toVersion}: ${describeError(error).split('\n')[0]}`,
    )
  })
  if (chartInfo.version !== toVersion)
    throw new InputError(
      '--chart',
      `${request.chart} is ${chartInfo.name} ${chartInfo.version}, not ${toVersion}; give the chart of ${toVersion}`,
    )

  // One writer at a time: a rollback never races an upgrade of the same release.
  const lock = await acquireLock(deps, request.release, holder)
  try {
    const recorded = await deps.cluster.readRun(request.release.namespace, request.release.name)
    // Another install's record keeps nothing of this one's: not its values, not its rollback target.
    const unfinished = isOtherInstance(recorded?.releaseInstance, instance) ? undefined : recorded
    const ctx: RunContext = {
      deps,
      release: request.release,
      strategy,
      chart: request.chart,
      previousChart: request.chart,
      targetVersion: release.chartVersion,
      previousVersion: toVersion,
      // Captured once: after an earlier rollback the release's values carry kata-lcm's overrides.
      userValues: unfinished?.userValues ?? (await deps.helm.values(release.name, release.namespace, { all: false })),
      batchSize: 1,
      readyTimeoutMs: request.readyTimeoutMs,
      helmTimeout: request.helmTimeout,
      helmCommands: [],
      ...(signal ? { signal } : {}),
      ...(instance ? { releaseInstance: instance } : {}),
    }
    const settings: RunSettings = {
      batchSize: 1,
      drain: false,
      drainTimeoutMs: request.readyTimeoutMs,
      readyTimeoutMs: request.readyTimeoutMs,
      helmTimeout: request.helmTimeout,
      verification: verification ?? {
        source: '',
        origin: '',
        namespace: 'default',
        timeoutMs: request.readyTimeoutMs,
      },
    }
    if (!unfinished) {
      await deps.cluster.writeRun({
        runId,
        release: release.name,
        namespace: release.namespace,
        mode,
        targetVersion: release.chartVersion,
        previousVersion: toVersion,
        previousRevision: release.revision,
        chart: request.chart,
        previousChart: request.chart,
        userValues: ctx.userValues,
        startedAt: deps.clock.now().toISOString(),
        waves: [[node.name]],
        settings,
        holder,
        ...(instance ? { releaseInstance: instance } : {}),
      })
    }
    const wave = waveSettings(unfinished?.runId ?? runId, settings, template, {
      verifyAfterRevert: template !== undefined,
    })
    const state = newWaveState(ctx, wave, 1, [await markForRollback(deps, node, runId, toVersion, instance)])
    state.results.set(node.name, { name: node.name, status: 'rolling-back', error: 'rollback requested' })
    await runHandlers(state, 'rollback')
    const result = state.results.get(node.name) ?? { name: node.name, status: 'failed' as const, error: 'no result' }
    const base = {
      command: 'rollback' as const,
      runId,
      policy: request.policy.name,
      release: request.release,
      mode,
      fromVersion: release.chartVersion,
      targetVersion: toVersion,
      dryRun: false,
      waves: [[node.name]],
      helmCommands: ctx.helmCommands,
    }
    if (result.status !== 'rolled-back') {
      return {
        ...base,
        outcome: 'manual-action',
        mixedFleet: true,
        summary: `rollback of ${node.name} failed: ${result.error ?? 'unknown'}; the node stays cordoned`,
        nodes: [result],
        nextSteps: [
          `inspect: kubectl describe node ${node.name}; helm history ${release.name} -n ${request.release.namespace}`,
          `uncordon by hand once fixed: kubectl uncordon ${node.name}`,
        ],
      }
    }
    const restored = await restoreWhenConverged(ctx, request.chart, toVersion)
    return {
      ...base,
      outcome: 'success',
      mixedFleet: !restored,
      summary:
        `${node.name} is back on kata-deploy ${toVersion}` +
        (restored
          ? `; every node runs ${toVersion} and the release has your own values back`
          : `; other nodes still run another version, so kata-lcm keeps your values in its run record until they are back on one version`),
      nodes: [{ name: node.name, status: 'rolled-back', version: toVersion }],
      nextSteps: restored
        ? []
        : [
            'kata-lcm status shows which nodes run which version',
            `kata-lcm rollback NODE for each, or kata-lcm upgrade --target-version ${release.chartVersion} to move the fleet forward again`,
          ],
    }
  } finally {
    await lock.release()
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

async function previousFromHistory(
  deps: LifecycleDeps,
  release: ReleaseRef,
  current: string,
): Promise<string | undefined> {
  const history = await deps.helm.history(release.name, release.namespace)
  return [...history].sort((a, b) => b.revision - a.revision).find((r) => r.chartVersion !== current)?.chartVersion
}
