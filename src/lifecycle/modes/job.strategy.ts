import type { JobView } from '../../ports/cluster.port.js'
import type { HelmUpgradeRequest } from '../../ports/helm.port.js'
import { describeError, HelmError } from '../errors.js'
import { mergeValues, type Values } from '../values.js'
import { runUpgrade, type DeploymentStrategy, type NodeOutcome, type NodeOutcomes, type RunContext } from './strategy.js'

function request(ctx: RunContext, chart: string, version: string, nodes: string[]): HelmUpgradeRequest {
  const scoped: Values = { deploymentMode: 'job', job: { nodes, parallelism: Math.max(1, Math.min(ctx.batchSize, nodes.length)) }, verification: { pod: '' } }
  return { release: ctx.release.name, namespace: ctx.release.namespace, chart, version, values: mergeValues(ctx.userValues, scoped), timeout: ctx.helmTimeout }
}

/**
 * The node's install Job of this helm upgrade: bound to the node and not among the Jobs that existed
 * before it (kata-deploy keeps finished Jobs for a while; an old one must never decide). Judged by
 * identity rather than by time, so clock skew between this host and the API server cannot matter.
 */
function installJobFor(jobs: readonly JobView[], node: string, before: ReadonlySet<string>): JobView | undefined {
  const matching = jobs.filter((j) => j.targetNode === node && !before.has(j.uid))
  return matching.sort((a, b) => (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '')).at(-1)
}

/** Judges one node's install Job among the Jobs not in `before`. Pure. */
export function judgeInstallJob(jobs: readonly JobView[], node: string, before: ReadonlySet<string>): NodeOutcome | undefined {
  const job = installJobFor(jobs, node, before)
  if (job?.outcome === 'Complete') return { ok: true }
  if (job?.outcome === 'Failed') return { ok: false, reason: `install Job ${job.name} for ${node} failed${job.message ? `: ${job.message}` : ''}` }
  return undefined
}

/**
 * Runs the scoped helm upgrade (the dispatcher installs just `nodes`), then watches the per-node
 * install Jobs. A helm failure is not the verdict by itself: kata-deploy's dispatcher fails the
 * release when any node fails, so each node is judged by its own Job.
 */
async function installOn(ctx: RunContext, chart: string, version: string, nodes: string[]): Promise<NodeOutcomes> {
  const before = new Set((await ctx.deps.cluster.listJobs(ctx.release.namespace)).map((j) => j.uid))
  let helmFailure: string | undefined
  try {
    await runUpgrade(ctx, request(ctx, chart, version, nodes))
  } catch (error) {
    if (!(error instanceof HelmError)) throw error
    helmFailure = describeError(error)
  }
  const verdicts: NodeOutcomes = new Map()
  const decide = (jobs: JobView[]) => {
    for (const node of nodes) {
      if (verdicts.has(node)) continue
      const verdict = judgeInstallJob(jobs, node, before)
      if (verdict) verdicts.set(node, verdict)
    }
    return verdicts.size === nodes.length ? true : undefined
  }
  // After a helm failure the Jobs that exist are all there will be: judge what is there, don't wait.
  const result = helmFailure === undefined
    ? await ctx.deps.cluster.waitForJobs(ctx.release.namespace, '', decide, ctx.readyTimeoutMs, ctx.signal)
    : { done: decide(await ctx.deps.cluster.listJobs(ctx.release.namespace)) === true }
  if (!result.done) {
    for (const node of nodes) {
      if (!verdicts.has(node)) verdicts.set(node, { ok: false, reason: helmFailure ? `no finished install Job for ${node} (helm: ${helmFailure})` : `install Job for ${node} did not finish within ${Math.round(ctx.readyTimeoutMs / 1000)}s` })
    }
  }
  return verdicts
}

/** job mode (kata-deploy >= 3.32.0): each wave is one helm upgrade scoped with job.nodes. */
export const jobStrategy: DeploymentStrategy = {
  mode: 'job',
  minimumVersion: '3.32.0',

  // One scoped helm upgrade per wave.
  plannedUpgrades(ctx, waves) {
    return waves.map((nodes) => request(ctx, ctx.chart, ctx.targetVersion, nodes))
  },

  requiredAccess(namespace) {
    return ['list', 'watch'].map((verb) => ({ verb, resource: 'jobs.batch', namespace }))
  },

  async precheck() {
    // The install Jobs are the evidence in job mode; nothing on the nodes to check beforehand.
  },

  upgradeWave(ctx, nodes) {
    return installOn(ctx, ctx.chart, ctx.targetVersion, nodes)
  },

  // A plain `helm rollback` would not re-run the dispatcher: reinstall the captured version on just these nodes.
  revertNodes(ctx, nodes) {
    return installOn(ctx, ctx.previousChart, ctx.previousVersion, nodes)
  },

  async restoreValues(ctx, chart, version) {
    // The operator's own values back (job.nodes as they had it, usually [] = the chart's selection,
    // their verification pod) without hooks, so no node is touched now and an operator's later plain
    // `helm upgrade --reuse-values` neither skips nodes nor re-runs against a stale wave list.
    await runUpgrade(ctx, { release: ctx.release.name, namespace: ctx.release.namespace, chart, version, values: ctx.userValues, noHooks: true, timeout: ctx.helmTimeout })
    return true
  },
}
