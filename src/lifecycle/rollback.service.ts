import semver from 'semver'
import type { LifecycleDeps, ReleaseRef } from './context.js'
import { describeError, InputError, PreconditionError } from './errors.js'
import { strategyFor } from './modes/index.js'
import type { RunContext } from './modes/strategy.js'
import { Annotation } from './node-state.js'
import { cordonedByUs, releaseCordon, transition } from './node-ops.js'
import { detectMode } from './prerequisites.js'
import { acquireLock } from './lock.js'
import type { LifecycleReport } from './report.js'
import type { NodeView } from '../ports/cluster.port.js'
import { checkSchedulable, parseVerificationTemplate, type VerificationTemplate } from './verification.js'
import { verifyNode } from './verify-node.js'

export interface RollbackRequest {
  node: string
  release: ReleaseRef
  chart: string
  /** Explicit version to go back to; otherwise the node's recorded previous version, else helm history. */
  toVersion?: string
  verification?: { source: string; origin: string; namespace: string; timeoutMs: number }
  readyTimeoutMs: number
  helmTimeout: string
}

/**
 * `kata-lcm rollback NODE`: puts one node back on the version it ran before: cordon, revert, restart
 * or reinstall, wait, verify (when a pod is given), uncordon (only if kata-lcm cordoned it), annotate
 * `rolled-back`. Safe to rerun.
 */
export async function rollbackNode(deps: LifecycleDeps, request: RollbackRequest, runId: string, signal?: AbortSignal, holder = runId): Promise<LifecycleReport> {
  const template = request.verification ? parseVerificationTemplate(request.verification.source, request.verification.origin) : undefined
  if (request.toVersion !== undefined && semver.valid(request.toVersion) !== request.toVersion) throw new InputError('--to-version', `"${request.toVersion}" is not a semantic version; use e.g. 3.27.0`)
  await deps.helm.version()
  await deps.cluster.ping()
  const release = await deps.helm.release(request.release.name, request.release.namespace)
  if (!release) throw new PreconditionError(`--helm-release: no release "${request.release.name}" in namespace ${request.release.namespace}; check --helm-release and --helm-namespace`)
  if (release.status !== 'deployed') throw new PreconditionError(`release ${release.name} is "${release.status}", not deployed`, { suggestions: [`helm history ${release.name} -n ${release.namespace}`] })
  const node = await deps.cluster.getNode(request.node)
  if (!node) throw new InputError('NODE', `no node named "${request.node}" (kubectl get nodes lists them)`)
  if (template) {
    const problem = checkSchedulable(template, node)
    if (problem) throw new InputError('--verification-pod', problem.replace(/^--verification-pod /, ''))
  }
  const mode = detectMode(await deps.helm.values(release.name, release.namespace, { all: true }))
  if (mode !== 'daemonset' && mode !== 'job') throw new PreconditionError(`release ${release.name} has deploymentMode "${mode}"; kata-lcm knows daemonset and job`)
  const strategy = strategyFor(mode)
  const toVersion = request.toVersion ?? node.annotations[Annotation.previousVersion] ?? await previousFromHistory(deps, request.release, release.chartVersion)
  if (!toVersion) {
    throw new PreconditionError(`no earlier version is known for ${node.name}: kata-lcm never upgraded it and helm history holds no other chart version`, { suggestions: ['pass --to-version X.Y.Z'] })
  }
  const chartInfo = await deps.helm.showChart(request.chart, toVersion).catch((error: unknown) => {
    throw new InputError('--chart', `cannot read chart ${request.chart} at version ${toVersion}: ${describeError(error).split('\n')[0]}`)
  })
  if (chartInfo.version !== toVersion) throw new InputError('--chart', `${request.chart} is ${chartInfo.name} ${chartInfo.version}, not ${toVersion}; give the chart of ${toVersion}`)

  const ctx: RunContext = {
    deps, release: request.release, strategy, chart: request.chart, previousChart: request.chart,
    targetVersion: release.chartVersion, previousVersion: toVersion,
    userValues: await deps.helm.values(release.name, release.namespace, { all: false }),
    batchSize: 1, readyTimeoutMs: request.readyTimeoutMs, helmTimeout: request.helmTimeout, helmCommands: [], ...(signal ? { signal } : {}),
  }
  // One writer at a time: a rollback never races an upgrade of the same release.
  const lock = await acquireLock(deps, request.release, holder)
  try {
    return await revertOne(deps, ctx, node, toVersion, mode, template, request, runId, release.chartVersion, release.name)
  } finally {
    await lock.release()
  }
}

async function revertOne(
  deps: LifecycleDeps, ctx: RunContext, start: NodeView, toVersion: string, mode: string, template: VerificationTemplate | undefined,
  request: RollbackRequest, runId: string, fromVersion: string, releaseName: string,
): Promise<LifecycleReport> {
  let node = start
  const firstTouch = !cordonedByUs(node) && !node.unschedulable
  node = await transition(deps, node, 'rolling-back', {
    message: `kata-lcm run ${runId}: rolling back to ${toVersion} on request`,
    unschedulable: true,
    annotations: {
      [Annotation.runId]: runId, [Annotation.lastError]: null,
      ...(node.unschedulable && !cordonedByUs(node) ? { [Annotation.wasUnschedulable]: 'true' } : {}),
      ...(firstTouch ? { [Annotation.wasUnschedulable]: 'false', [Annotation.cordonedByUs]: 'true' } : {}),
    },
  })
  let outcome = (await ctx.strategy.revertNodes(ctx, [node.name]).catch((error: unknown) => new Map([[node.name, { ok: false as const, reason: describeError(error) }]]))).get(node.name) ?? { ok: false as const, reason: 'no result' }
  let evidence
  if (outcome.ok && template && request.verification) {
    const verified = await verifyNode(ctx, { template, namespace: request.verification.namespace, timeoutMs: request.verification.timeoutMs }, node.name)
    outcome = verified
    evidence = verified.evidence
  }
  const base = {
    command: 'rollback' as const, runId, release: request.release, mode, fromVersion, targetVersion: toVersion,
    dryRun: false, waves: [[node.name]], helmCommands: ctx.helmCommands,
  }
  if (!outcome.ok) {
    await transition(deps, node, 'failed', { message: `rollback failed: ${outcome.reason}`, warning: true, annotations: { [Annotation.lastError]: outcome.reason.slice(0, 500) } })
    return {
      ...base, outcome: 'manual-action', mixedFleet: true, summary: `rollback of ${node.name} failed: ${outcome.reason}; the node stays cordoned`,
      nodes: [{ name: node.name, status: 'failed', error: outcome.reason, ...(evidence ? { evidence } : {}) }],
      nextSteps: [`inspect: kubectl describe node ${node.name}; helm history ${releaseName} -n ${request.release.namespace}`, `uncordon by hand once fixed: kubectl uncordon ${node.name}`],
    }
  }
  const release2 = releaseCordon(node)
  await transition(deps, node, 'rolled-back', { message: `back on ${toVersion}`, ...release2, annotations: { ...release2.annotations, [Annotation.currentVersion]: toVersion } })
  return {
    ...base, outcome: 'success', mixedFleet: mode === 'daemonset',
    summary: `${node.name} is back on kata-deploy ${toVersion}` + (mode === 'daemonset' ? `; the release ${releaseName} now installs ${toVersion}, other nodes keep the pods they run (OnDelete)` : ''),
    nodes: [{ name: node.name, status: 'rolled-back', version: toVersion }],
    nextSteps: mode === 'daemonset' ? ['kata-lcm status shows which nodes still run the newer version'] : [],
  }
}

async function previousFromHistory(deps: LifecycleDeps, release: ReleaseRef, current: string): Promise<string | undefined> {
  const history = await deps.helm.history(release.name, release.namespace)
  return [...history].sort((a, b) => b.revision - a.revision).find((r) => r.chartVersion !== current)?.chartVersion
}
