import type { JobView, NodeView } from '../../ports/cluster.port.js'
import type { HelmUpgradeRequest } from '../../ports/helm.port.js'
import semver from 'semver'
import { describeError, HelmError, ManualActionError, PreconditionError } from '../errors.js'
import { listed } from '../run/report.js'
import { mergeValues, type Values } from '../settings/values.js'
import {
  NO_HOOKS,
  runUpgrade,
  type DeploymentStrategy,
  type NodeOutcome,
  type NodeOutcomes,
  type RunContext,
  type WaveHooks,
} from './strategy.js'

/** The first kata-deploy whose dispatcher treats job.nodes as the set of nodes the release owns. */
const OWNERSHIP_VERSION = '4.1.0'

/** What kata-deploy's installer puts on every node it installed, in every version and mode; its cleanup takes it off. */
const INSTALLED_LABEL = 'katacontainers.io/kata-runtime=true'
const isInstalled = (node: NodeView) => {
  const [key, value] = INSTALLED_LABEL.split('=') as [string, string]
  return node.labels[key] === value
}

/** The label the kata-deploy installer puts on a node it installed (`kata-deploy.katacontainers.io/<suffix|default>=true`). Pure. */
export function installMarker(values: Values): string {
  const suffix = (values.env as { multiInstallSuffix?: unknown } | undefined)?.multiInstallSuffix
  return `kata-deploy.katacontainers.io/${typeof suffix === 'string' && suffix !== '' ? suffix : 'default'}=true`
}

/** The first kata-deploy with job.dispatcherTolerations (before it, the dispatcher takes the top-level tolerations). */
const DISPATCHER_TOLERATIONS_VERSION = '4.1.0'

/** The cordon's taint: kata-lcm's waves put it on every node of the wave. */
const UNSCHEDULABLE_TOLERATION = { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }

const tolerates = (tolerations: unknown[]) =>
  tolerations.some((t) => {
    const { key, operator, effect } = (t ?? {}) as Record<string, unknown>
    const keyMatches = key === UNSCHEDULABLE_TOLERATION.key || key === undefined
    return keyMatches && operator === 'Exists' && (effect === undefined || effect === 'NoSchedule')
  })

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])

/**
 * Where the install dispatcher's pod may run during a wave. kata-deploy's dispatcher (every job-mode
 * version) is a hook Job the scheduler places; a wave that cordons every node it may run on would
 * leave it Pending, helm would wait out its timeout, and the rollback, which needs the same
 * dispatcher, would fail too. So kata-lcm adds the cordon's toleration to the dispatcher's own:
 * `job.dispatcherTolerations` from 4.1.0 (the operator's, else the top-level tolerations the chart
 * falls back to), the top-level `tolerations` before (the per-node Jobs, bound by nodeName, take
 * them too, harmlessly). Nothing when the operator's tolerations already cover it. Pure.
 */
export function dispatcherPlacement(userValues: Values, version: string): Values {
  if (!semver.valid(version)) return {}
  const top = list(userValues.tolerations)
  if (semver.lt(version, DISPATCHER_TOLERATIONS_VERSION))
    return tolerates(top) ? {} : { tolerations: [...top, UNSCHEDULABLE_TOLERATION] }
  const own = list((userValues.job as { dispatcherTolerations?: unknown } | undefined)?.dispatcherTolerations)
  const base = own.length > 0 ? own : top
  return tolerates(base) ? {} : { job: { dispatcherTolerations: [...base, UNSCHEDULABLE_TOLERATION] } }
}

function request(ctx: RunContext, chart: string, version: string, nodes: string[]): HelmUpgradeRequest {
  const scoped: Values = mergeValues(dispatcherPlacement(ctx.userValues, version), {
    deploymentMode: 'job',
    job: { nodes, parallelism: Math.max(1, Math.min(ctx.batchSize, nodes.length)) },
    verification: { pod: '' },
  })
  return {
    release: ctx.release.name,
    namespace: ctx.release.namespace,
    chart,
    version,
    values: mergeValues(ctx.userValues, scoped),
    overrides: scoped,
    timeout: ctx.helmTimeout,
  }
}

/**
 * The node's install Job of this helm upgrade: bound to the node and not among the Jobs that existed
 * before it (kata-deploy keeps finished Jobs for a while; an old one must never decide). Judged by
 * identity rather than by time, so clock skew between this host and the API server cannot matter.
 */
function installJobFor(jobs: readonly JobView[], node: string, before: ReadonlySet<string>): JobView | undefined {
  const matching = jobs.filter((j) => j.targetNode === node && !before.has(j.uid) && !isCleanup(j))
  return matching.sort((a, b) => (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '')).at(-1)
}

/** A per-node Job of kata-deploy's cleanup pipeline (it uninstalls), never a node's install. */
function isCleanup(job: JobView): boolean {
  return job.labels['kata-deploy/stage'] === 'cleanup'
}

/** Judges one node's install Job among the Jobs not in `before`. Pure. */
export function judgeInstallJob(
  jobs: readonly JobView[],
  node: string,
  before: ReadonlySet<string>,
): NodeOutcome | undefined {
  const job = installJobFor(jobs, node, before)
  if (job?.outcome === 'Complete') return { ok: true }
  if (job?.outcome === 'Failed')
    return { ok: false, reason: `install Job ${job.name} for ${node} failed${job.message ? `: ${job.message}` : ''}` }
  return undefined
}

/**
 * Runs the scoped helm upgrade (the dispatcher installs just `nodes`), then judges each node by its
 * own install Job. kata-deploy's dispatcher is a helm hook that creates every per-node Job and waits
 * for them, so when helm returns the Jobs that will exist exist: a node without one is failed at
 * once. A helm failure is not the verdict by itself (the dispatcher fails the release when any node
 * fails). Afterwards, every node outside `nodes` that carried kata-deploy's install label before
 * still carries it, or the run stops: a dispatcher that uninstalled them must not be driven further.
 * The helm upgrade covers the nodes `hooks.starting` let through (the reads before it run meanwhile).
 */
async function installOn(
  ctx: RunContext,
  chart: string,
  version: string,
  wave: string[],
  hooks: WaveHooks = NO_HOOKS,
): Promise<NodeOutcomes> {
  const { cluster } = ctx.deps
  const starting = Promise.all(wave.map((node) => hooks.starting(node)))
  const installed = async () => (await cluster.listNodes(INSTALLED_LABEL)).map((n) => n.name)
  const [before, installedAtStart, started] = await Promise.all([
    cluster.listJobs(ctx.release.namespace).then((jobs) => new Set(jobs.map((j) => j.uid))),
    installed(),
    starting,
  ])
  const nodes = wave.filter((_, i) => started[i])
  if (nodes.length === 0) return new Map()
  const inWave = new Set(nodes)
  const outside = (names: string[]) => new Set(names.filter((n) => !inWave.has(n)))
  const installedBefore = outside(installedAtStart)
  let helmFailure: string | undefined
  try {
    await runUpgrade(ctx, request(ctx, chart, version, nodes))
  } catch (error) {
    if (!(error instanceof HelmError)) throw error
    helmFailure = describeError(error)
  }
  const installedAfter = outside(await installed())
  const lost = [...installedBefore].filter((n) => !installedAfter.has(n))
  if (lost.length > 0)
    throw new ManualActionError(
      `kata-deploy ${version}'s install dispatcher removed Kata from ${listed(lost)}, outside job.nodes (${listed(nodes)}): kata-lcm stopped before the next wave; the nodes of this wave stay cordoned`,
      {
        suggestions: [
          `reinstall the removed nodes: helm upgrade ${ctx.release.name} -n ${ctx.release.namespace} with job.nodes covering every node of the release`,
          'then kata-lcm unlock --forget-run prints the values to restore',
        ],
      },
    )
  const verdicts: NodeOutcomes = new Map()
  const decide = (jobs: JobView[]) => {
    for (const node of nodes) {
      if (verdicts.has(node)) continue
      const verdict = judgeInstallJob(jobs, node, before)
      if (!verdict) continue
      verdicts.set(node, verdict)
      hooks.settled(node, verdict)
    }
    return verdicts.size === nodes.length ? true : undefined
  }
  const jobs = await cluster.listJobs(ctx.release.namespace)
  for (const node of nodes)
    if (!installJobFor(jobs, node, before))
      verdicts.set(node, {
        ok: false,
        reason: `kata-deploy's dispatcher created no install Job for ${node}${helmFailure ? ` (helm: ${helmFailure})` : ' (helm returned, so none will come)'}`,
      })
  const result =
    decide(jobs) === true || helmFailure !== undefined
      ? { done: verdicts.size === nodes.length }
      : await cluster.waitForJobs(ctx.release.namespace, '', decide, ctx.readyTimeoutMs)
  if (!result.done) {
    for (const node of nodes) {
      if (!verdicts.has(node))
        verdicts.set(node, {
          ok: false,
          reason: helmFailure
            ? `install Job for ${node} did not finish (helm: ${helmFailure})`
            : `install Job for ${node} did not finish within ${Math.round(ctx.readyTimeoutMs / 1000)}s`,
        })
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

  plannedRevert(ctx, nodes) {
    return request(ctx, ctx.previousChart, ctx.previousVersion, nodes)
  },

  requiredAccess(namespace) {
    return ['list', 'watch'].map((verb) => ({ verb, resource: 'jobs.batch', namespace }))
  },

  async checkWaves(deps, plan) {
    const { targetVersion, previousVersion, waves } = plan
    const owning = [targetVersion, previousVersion].filter((v) => semver.valid(v) && semver.gte(v, OWNERSHIP_VERSION))
    if (owning.length === 0 || waves.length === 0) return
    // 4.1.0's dispatcher runs the cleanup pipeline (it uninstalls Kata) on every node carrying the
    // install's marker that is not in job.nodes: a wave-scoped job.nodes cleans every other node.
    const marker = installMarker(plan.userValues)
    const marked = (await deps.cluster.listNodes(marker)).map((n) => n.name)
    const inWave = new Set(waves[0])
    const outside = [...new Set([...marked.filter((n) => !inWave.has(n)), ...waves.slice(1).flat()])]
    if (outside.length === 0) return
    const shown = listed(outside)
    throw new PreconditionError(
      `job mode cannot go wave by wave on kata-deploy ${owning.join(' / ')}: from ${OWNERSHIP_VERSION} its install dispatcher uninstalls Kata from every node of the release outside job.nodes, so a wave would uninstall it from ${shown}`,
      {
        suggestions: [
          `upgrade every node of the release in one wave: a selection that covers all of them and --batch-size ${marked.length > 0 ? Math.max(marked.length, waves.flat().length) : waves.flat().length} or more`,
          'or run the release in daemonset mode, which upgrades wave by wave on every version (on 4.1.0 a mode switch is helm uninstall + install)',
        ],
      },
    )
  },

  // Job mode keeps no per-node revision: a node kata-deploy's installer labelled is on the release.
  async confirmDone(deps, _release, _values, nodes) {
    const wanted = new Set(nodes)
    return new Set((await deps.cluster.listNodes(INSTALLED_LABEL)).map((n) => n.name).filter((n) => wanted.has(n)))
  },

  async coveredNodes(ctx, version) {
    const owning = semver.valid(version) !== null && semver.gte(version, OWNERSHIP_VERSION)
    return { nodes: await ctx.deps.cluster.listNodes(owning ? installMarker(ctx.userValues) : undefined), pods: [] }
  },

  // Its health is the node's label: the nodes' watch sees it change.
  healthPods() {
    return undefined
  },

  // The install is done once its Job succeeded; what stays on the node is kata-deploy's label (a soak
  // compares both ends, so a node whose install never labelled it is judged by its readiness alone).
  async health(ctx, nodes) {
    const { cluster } = ctx.deps
    // One node (its verification just passed): that node, not every labelled one.
    const labelled =
      nodes.length === 1
        ? [await cluster.getNode(nodes[0]!)].filter((n) => n !== undefined && isInstalled(n))
        : await cluster.listNodes(INSTALLED_LABEL)
    const installed = new Set(labelled.map((n) => n!.name))
    return new Map(
      nodes.map((n) => [
        n,
        { ok: true, detail: installed.has(n) ? `labelled ${INSTALLED_LABEL}` : `not labelled ${INSTALLED_LABEL}` },
      ]),
    )
  },

  async precheck() {
    // The install Jobs are the evidence in job mode; nothing on the nodes to check beforehand.
  },

  upgradeWave(ctx, nodes, hooks) {
    return installOn(ctx, ctx.chart, ctx.targetVersion, nodes, hooks)
  },

  // A plain `helm rollback` would not re-run the dispatcher: reinstall the captured version on just these nodes.
  revertNodes(ctx, nodes) {
    return installOn(ctx, ctx.previousChart, ctx.previousVersion, nodes)
  },

  async restoreValues(ctx, chart, version) {
    // The operator's own values back (job.nodes as they had it, usually [] = the chart's selection,
    // their verification pod) without hooks, so no node is touched now and an operator's later plain
    // `helm upgrade --reuse-values` neither skips nodes nor re-runs against a stale wave list.
    await runUpgrade(ctx, {
      release: ctx.release.name,
      namespace: ctx.release.namespace,
      chart,
      version,
      values: ctx.userValues,
      noHooks: true,
      timeout: ctx.helmTimeout,
    })
    return true
  },
}
