import semver from 'semver'
import type { NodeView, RunRecord, RunSettings } from '../../ports/cluster.port.js'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { checkAccess } from './access.js'
import { checkDuration } from '../settings/durations.js'
import { checkNamespace, checkReleaseRef } from './names.js'
import { checkDrainable, NO_FORCE } from '../engine/drain.js'
import { InputError, PreconditionError } from '../errors.js'
import { DEPLOYMENT_MODES, strategyFor } from '../modes/index.js'
import { checkRelease, releaseStrategy, versionBefore } from './release-checks.js'
import { early, startReads, type Reads, type ReadScope } from './reads.js'
import type { DeploymentMode, DeploymentStrategy } from '../modes/strategy.js'
import type { UpgradeRequest } from '../settings/request.js'
import { Annotation, isInFlight, isOtherInstance, memoryFor, readStatus } from '../engine/node-state.js'
import {
  batchNodes,
  describeSelection,
  isSkipped,
  planWaves,
  selectNodes,
  SKIP_LABEL,
  validateSelection,
  type BatchSpec,
} from '../run/plan.js'
import { everyPoolVerifies, groupByPool, podFor } from '../run/pools.js'
import { newRecord } from '../run/record.js'
import { listed } from '../run/report.js'
import type { Values } from '../settings/values.js'
import { ON_DISRUPTION } from '../engine/workloads.js'
import { checkSchedulable, parseVerificationTemplate, type VerificationTemplate } from '../engine/verification.js'

// The request's shape lives in request.ts (access.ts reads it too, and prerequisites.ts imports access.ts).
export type { RequestedMode, UpgradeRequest } from '../settings/request.js'

/** Everything checked and captured before the first write. */
export interface RunPlan {
  /** Why the run record found beside the release was set aside (another install's), when it was. */
  staleRun?: string
  release: ReleaseInfo
  strategy: DeploymentStrategy
  /**
   * The run record to keep beside the release (an interrupted run's, when resuming it): the run's
   * versions, charts, values, waves and settings are read from it, nowhere else.
   */
  record: RunRecord
  /** True when an interrupted run toward the same target is being resumed. */
  resumingRun: boolean
  /** The run's verification pod; undefined only when every pool brings its own. */
  verification: VerificationTemplate | undefined
  /** Nodes to act on, in order (interrupted nodes first). */
  nodes: NodeView[]
  /** Selected nodes already completed on the target by an earlier run: never repeated. */
  alreadyDone: string[]
  /** Selected nodes an earlier run left mid-flight: finished (or rolled back) first. */
  resumed: string[]
  /** Selected nodes an operator keeps out with the skip label: never touched. */
  excluded: string[]
  /** With pools: each pool's selected nodes and nodes per wave, in order. */
  pools?: PoolPlan[]
}

export interface PoolPlan {
  name: string
  nodes: string[]
  batchSize: number
  /** The pool's first wave's size (its own canary, else the run's). */
  canary?: number
}

const MODES: readonly string[] = ['auto', ...DEPLOYMENT_MODES]

/** Pure input checks: no cluster, no helm. Throws InputError naming the flag. */
export function validateRequest(request: UpgradeRequest): VerificationTemplate | undefined {
  validateSettings(request)
  if (request.verification.source === '') {
    if (everyPoolVerifies(request.pools)) return undefined
    const without = (request.pools ?? []).filter((p) => !p.verification?.source).map((p) => p.name)
    throw new InputError(
      '--verification-pod',
      without.length > 0
        ? `is required: pool(s) ${without.join(', ')} have no verification.pod of their own`
        : 'is required: give the Pod YAML run on every upgraded node',
    )
  }
  return parseVerificationTemplate(request.verification.source, request.verification.origin)
}

/**
 * Every setting of a request but its verification pod, which may come from the fleet policy: what
 * the flags alone decide, so `upgrade` checks them before the kubeconfig is read or the policy looked
 * up. Pure; throws InputError naming the flag.
 */
export function validateSettings(request: Omit<UpgradeRequest, 'policy'>): void {
  // semver.valid() accepts and strips a leading "v"; chart versions have none, so require the exact form.
  if (semver.valid(request.targetVersion) !== request.targetVersion) {
    throw new InputError(
      '--target-version',
      `"${request.targetVersion}" is not a semantic version; use e.g. 3.28.0 (no leading "v")`,
    )
  }
  if (!Number.isInteger(request.batchSize) || request.batchSize < 1)
    throw new InputError('--batch-size', `must be a whole number >= 1, got ${request.batchSize}`)
  if (request.canary !== undefined && (!Number.isInteger(request.canary) || request.canary < 1))
    throw new InputError('--canary', `must be a whole number >= 1, got ${request.canary}`)
  if (request.soakMs !== undefined) checkDuration('--soak', request.soakMs)
  if (request.maxUnavailable !== undefined && (!Number.isInteger(request.maxUnavailable) || request.maxUnavailable < 1))
    throw new InputError('--max-unavailable', `must be a whole number >= 1, got ${request.maxUnavailable}`)
  if (request.onWorkloadDisruption !== undefined && !ON_DISRUPTION.includes(request.onWorkloadDisruption))
    throw new InputError(
      '--on-workload-disruption',
      `"${String(request.onWorkloadDisruption)}" is not one; use report or stop`,
    )
  if (!MODES.includes(request.deploymentMode))
    throw new InputError('--deployment-mode', `"${request.deploymentMode}" is not a mode; use auto, daemonset or job`)
  for (const [flag, ms] of [
    ['--verification-timeout', request.verification.timeoutMs],
    ['--drain-timeout', request.drainTimeoutMs],
    ['--ready-timeout', request.readyTimeoutMs],
  ] as const) {
    checkDuration(flag, ms)
  }
  if (request.chart.trim() === '')
    throw new InputError('--chart', 'is empty; give an OCI reference, a repo/chart name, a chart directory or a .tgz')
  checkReleaseRef(request.release)
  checkNamespace('--verification-namespace', request.verification.namespace)
  validateSelection(request.selection)
}

/**
 * The one-time command that switches a release's mode; kata-lcm never runs it. Before 4.1.0:
 * `--reset-then-reuse-values` (plain `--reuse-values` across chart versions fails on keys the old
 * chart lacked). From 4.1.0 the mode is immutable (the chart refuses the change): uninstall, then
 * install with the operator's values and the new mode. Pure.
 */
export function migrationCommand(
  release: ReleaseRef,
  chart: string,
  mode: DeploymentMode,
  version: string,
  releaseVersion: string,
): string {
  const where = `${release.name} -n ${release.namespace}`
  if (semver.gte(version, IMMUTABLE_MODE_VERSION) || semver.gte(releaseVersion, IMMUTABLE_MODE_VERSION)) {
    return `helm get values ${where} -o yaml > values.yaml && helm uninstall ${where} && helm install ${release.name} ${chart} -n ${release.namespace} --version ${version} -f values.yaml --set deploymentMode=${mode}`
  }
  return `helm upgrade ${release.name} ${chart} -n ${release.namespace} --version ${version} --reset-then-reuse-values --set deploymentMode=${mode}`
}

/** From this kata-deploy on, deploymentMode and env.multiInstallSuffix cannot change in an upgrade. */
const IMMUTABLE_MODE_VERSION = '4.1.0'

/**
 * Checks everything before any write and captures the rollback target (revision, chart version,
 * values) at the start, so rollback never depends on helm history surviving. Read-only.
 */
export async function checkPrerequisites(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  runId: string,
  /**
   * The plan this one checks again (under the lock the first was made without): what cannot have
   * changed since is not read again (helm's version, the access, the charts, and the release's
   * instance and values while its revision is the same); the run record and the nodes are.
   */
  earlier?: RunPlan,
): Promise<RunPlan> {
  // The request checked again under the lock is the one the first plan checked.
  const verification = earlier ? earlier.verification : validateRequest(request)
  const reads = startReads(deps, upgradeScope(deps, request), earlier && READS.get(earlier))
  await reads.helm()
  await reads.access()
  await reads.ping()
  const found = await releaseAndRun(request, reads)
  const { release, interrupted, resumingRun, current, releaseInstance } = found
  const allValues = await reads.allValues()
  const strategy = await checkMode(deps, request, release, allValues, current)
  await reads.targetChart()
  const previousChart = request.previousChart ?? (resumingRun ? interrupted!.previousChart : request.chart)
  const previousChartCheck = (version: string) =>
    reads.chart(
      previousChart,
      version,
      request.previousChart ? '--previous-chart' : '--chart',
      request.previousChart ? '' : PREVIOUS_CHART_HINT,
    )
  // The chart to roll back to is checked beside the fleet's reads when the release is not at the
  // target yet (its version is then the rollback target); it is awaited only if there is work.
  if (current !== request.targetVersion) early(previousChartCheck(current))

  // The operator's values are captured once, by the first run, and kept in the record until they are
  // back in the release: after a rollback the release's values carry kata-lcm's overrides, not theirs.
  const userValues = await reads.userValues()
  // The mode's own reads go beside the nodes' (at 1000 nodes each is two pages, one after the other).
  const fleetRead = reads.nodes().then((listed) => selectFleet(deps, request, listed, releaseInstance, verification))
  const selected = early(fleetRead.then((f) => f.selected))
  const prechecked = early(strategy.precheck(deps, request.release, selected(), allValues))
  const fleet = await fleetRead
  await prechecked()
  const { alreadyDone, resumed, nodes } = await nodesToDo(deps, request, fleet.selected, release, allValues, strategy)
  // The rollback target matters only when there is work; a rerun with nothing to do needs none.
  const idle = nodes.length === 0 && !resumingRun
  const previousVersion =
    idle || current !== request.targetVersion ? current : await rollbackVersion(deps, release.name, request)
  if (!idle) await previousChartCheck(previousVersion)
  const { batchSize, waves, wavePools, pools } = fleet.rollout.waves(nodes)
  await strategy.checkWaves(deps, {
    release: request.release,
    targetVersion: request.targetVersion,
    previousVersion,
    waves,
    userValues,
    drain: request.drain,
    acceptRestartHazard: request.acceptRestartHazard ?? false,
  })
  // The first wave's drain is judged now, before anything is written; each later wave before it starts.
  if (request.drain && waves[0]) await checkDrainable(deps, waves[0], request.drainPolicy ?? NO_FORCE, 'wave 1')
  const record = recordOf(request, {
    runId,
    startedAt: deps.clock.now().toISOString(),
    ...found,
    strategy,
    previousVersion,
    previousChart,
    userValues,
    waves,
    wavePools,
    settings: settingsOf(request, batchSize, fleet.rollout.poolVerification),
  })
  const plan: RunPlan = {
    ...(found.staleRun ? { staleRun: found.staleRun } : {}),
    release,
    strategy,
    record,
    resumingRun,
    verification,
    nodes,
    alreadyDone: alreadyDone.map((n) => n.name),
    resumed: resumed.map((n) => n.name),
    excluded: fleet.excluded,
    ...(pools ? { pools } : {}),
  }
  READS.set(plan, reads)
  return plan
}

const PREVIOUS_CHART_HINT = ' (and --previous-chart for the version to roll back to)'

/** What an upgrade reads: its release, what it will touch, its target chart and the selected nodes. */
function upgradeScope(deps: LifecycleDeps, request: UpgradeRequest): ReadScope {
  return {
    reach: {
      release: request.release,
      verificationNamespace: request.verification.namespace,
      policyNamespace: request.policy.namespace,
      soak: Boolean(request.soakMs),
      drain: request.drain,
    },
    chart: { ref: request.chart, version: request.targetVersion, flag: '--chart', hint: PREVIOUS_CHART_HINT },
    nodes: () => deps.cluster.listNodes(request.selection.labelSelector),
  }
}

/** What one planning read, so that a plan checked again reads only what may have changed since. */
const READS = new WeakMap<RunPlan, Reads>()

/**
 * The release, and the run record beside it: an interrupted run toward the same target is resumed
 * (it knows the real rollback target; the release may already be past it), one toward another
 * target must finish first, and another install's record is set aside (`staleRun` says why).
 */
async function releaseAndRun(request: UpgradeRequest, reads: Reads) {
  const info = await reads.release()
  // An interrupted run toward the same target knows the real rollback target; the release may already be past it.
  const interrupted = await reads.run()
  // A kata-lcm run in flight may find its own helm command of an earlier attempt pending: the
  // upgrade waits for it, or clears it once --helm-timeout has passed (pending-release.ts).
  const release = checkRelease(request.release, info, interrupted !== undefined)
  const releaseInstance = await reads.instance()
  const stale = await reads.recorded()
  const staleRun =
    stale && isOtherInstance(stale.releaseInstance, releaseInstance)
      ? `run ${stale.runId} (${stale.previousVersion} -> ${stale.targetVersion}) belongs to an earlier install of release ${release.name} (first deployed ${stale.releaseInstance}; this one ${releaseInstance}): it is not resumed, its values are not restored, and the nodes it annotated count as new; kata-lcm unlock --forget-run clears its record`
      : undefined
  const resumingRun = interrupted?.targetVersion === request.targetVersion
  if (interrupted && !resumingRun && release.chartVersion !== interrupted.previousVersion) {
    throw new PreconditionError(
      `a kata-lcm run (${interrupted.runId}) moving ${release.name} from ${interrupted.previousVersion} to ${interrupted.targetVersion} has not finished (interrupted, stopped on a failure, or not every kata-deploy pod is on ${interrupted.targetVersion} yet)`,
      {
        suggestions: [
          `finish it first: kata-lcm upgrade --target-version ${interrupted.targetVersion} (for the remaining nodes)`,
          'or roll its nodes back with kata-lcm rollback NODE, then: kata-lcm unlock --forget-run',
        ],
      },
    )
  }
  // The version the nodes come from: an interrupted run's, else the release's.
  const current = resumingRun ? interrupted.previousVersion : release.chartVersion
  return { release, interrupted, resumingRun, current, releaseInstance, staleRun }
}

/**
 * The release's mode, as its values say (kata-lcm never switches it: a mismatching
 * --deployment-mode is refused with the one-time command that would), the access that mode needs,
 * and the target version against the mode's first supported one and the version now.
 */
async function checkMode(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  release: ReleaseInfo,
  allValues: Values,
  current: string,
): Promise<DeploymentStrategy> {
  const strategy = releaseStrategy(release, allValues)
  if (request.deploymentMode !== 'auto' && request.deploymentMode !== strategy.mode)
    throw modeMismatch(request, release, strategy.mode, request.deploymentMode)
  await checkAccess(deps, strategy.requiredAccess(request.release.namespace))
  if (semver.lt(request.targetVersion, strategy.minimumVersion)) {
    throw new InputError(
      '--target-version',
      `${request.targetVersion} is below ${strategy.minimumVersion}, the first kata-deploy that supports ${strategy.mode} mode wave by wave; target ${strategy.minimumVersion} or later`,
    )
  }
  if (semver.lt(request.targetVersion, current) && !request.allowDowngrade) {
    throw new InputError(
      '--target-version',
      `${request.targetVersion} is older than the release's ${current}; pass --allow-downgrade to go back on purpose`,
    )
  }
  return strategy
}

function modeMismatch(
  request: UpgradeRequest,
  release: ReleaseInfo,
  detected: DeploymentMode,
  asked: DeploymentMode,
): PreconditionError {
  const minimum = strategyFor(asked).minimumVersion
  const version = semver.gte(request.targetVersion, minimum) ? request.targetVersion : minimum
  const immutable =
    semver.gte(version, IMMUTABLE_MODE_VERSION) || semver.gte(release.chartVersion, IMMUTABLE_MODE_VERSION)
  return new PreconditionError(
    `--deployment-mode: the release is in ${detected} mode, not ${asked}; kata-lcm never switches modes`,
    {
      suggestions: [
        'a mode switch flips the DaemonSet on or off for every node at once and cannot be staged wave by wave; run it once yourself, then use kata-lcm for later upgrades:',
        migrationCommand(request.release, request.chart, asked, version, release.chartVersion),
        ...(immutable
          ? [
              `from ${IMMUTABLE_MODE_VERSION} the mode is immutable: the uninstall removes Kata from every node until the install is done, so drain the Kata workloads first`,
            ]
          : []),
      ],
    },
  )
}

/**
 * The selected nodes (an operator's skip label keeps a node out: reported in `excluded`), their
 * rollout (pools, waves, verification pods), each verification pod schedulable on its node, and no
 * node an earlier rollback left `failed`. What kata-lcm wrote on a node for another install of the
 * release is not trusted: such a node is new.
 */
async function selectFleet(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  listedNodes: readonly NodeView[],
  releaseInstance: string | undefined,
  verification: VerificationTemplate | undefined,
) {
  const candidates = listedNodes.map((n) => memoryFor(n, releaseInstance))
  const matching = selectNodes(candidates, request.selection)
  const excluded = matching.filter(isSkipped).map((n) => n.name)
  const selected = matching.filter((n) => !isSkipped(n))
  if (selected.length === 0) {
    throw new PreconditionError(
      excluded.length > 0
        ? `every node matching ${describeSelection(request.selection)} carries ${SKIP_LABEL}=true (${listed(excluded)}); remove the label from the nodes to upgrade`
        : `no node matches ${describeSelection(request.selection)}; check --node-selector / --node-taint-key (kubectl get nodes --show-labels)`,
    )
  }
  const rollout = planRollout(request, matching, selected, verification)
  for (const { node, template, field } of rollout.templates) {
    const problem = checkSchedulable(template, node)
    if (problem) throw new InputError(field, problem.replace(/^--verification-pod /, ''))
  }
  const needsHands = selected.filter((n) => readStatus(n.annotations) === 'failed')
  if (needsHands.length > 0) {
    throw new PreconditionError(
      `${needsHands.map((n) => n.name).join(', ')}: an earlier rollback failed there (status failed); a person must look first`,
      {
        suggestions: needsHands.map((n) => `kubectl describe node ${n.name}; then kata-lcm rollback ${n.name}`),
      },
    )
  }
  return { selected, excluded, rollout }
}

/**
 * The selected nodes' work: those an earlier run left mid-flight first (`resumed`), then the rest;
 * a node is done (`alreadyDone`, never repeated) when its annotation says completed on the target
 * and the cluster agrees: its kata-deploy is the release's, at the target (`strategy.confirmDone`).
 */
async function nodesToDo(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  selected: readonly NodeView[],
  release: ReleaseInfo,
  allValues: Values,
  strategy: DeploymentStrategy,
) {
  const annotatedDone = selected.filter(
    (n) =>
      readStatus(n.annotations) === 'completed' && n.annotations[Annotation.currentVersion] === request.targetVersion,
  )
  const confirmed =
    annotatedDone.length > 0
      ? await strategy.confirmDone(
          deps,
          release,
          allValues,
          annotatedDone.map((n) => n.name),
          request.targetVersion,
        )
      : new Set<string>()
  const alreadyDone = annotatedDone.filter((n) => confirmed.has(n.name))
  const resumed = selected.filter((n) => isInFlight(readStatus(n.annotations)))
  const todo = selected.filter((n) => !alreadyDone.includes(n) && !resumed.includes(n))
  return { alreadyDone, resumed, nodes: [...resumed, ...todo] }
}

/** The run's recorded settings: what every wave, and every Argo step, runs with. Pure. */
function settingsOf(
  request: UpgradeRequest,
  batchSize: number,
  poolVerification: RunSettings['poolVerification'],
): RunSettings {
  return {
    batchSize,
    ...(request.soakMs !== undefined ? { soakMs: request.soakMs } : {}),
    ...(request.windows && request.windows.length > 0 ? { windows: request.windows } : {}),
    ...(request.onWorkloadDisruption === 'stop' ? { onWorkloadDisruption: 'stop' as const } : {}),
    ...(request.alerts ? { alerts: request.alerts } : {}),
    drain: request.drain,
    drainTimeoutMs: request.drainTimeoutMs,
    drainPolicy: request.drainPolicy ?? NO_FORCE,
    readyTimeoutMs: request.readyTimeoutMs,
    helmTimeout: request.helmTimeout,
    verification: request.verification,
    ...(poolVerification ? { poolVerification } : {}),
  }
}

/**
 * The run record to keep beside the release. A resumed run keeps its rollback target and the
 * operator's values, with this run's waves and settings. Pure.
 */
function recordOf(
  request: UpgradeRequest,
  run: {
    runId: string
    startedAt: string
    release: ReleaseInfo
    interrupted: RunRecord | undefined
    resumingRun: boolean
    releaseInstance: string | undefined
    strategy: DeploymentStrategy
    previousVersion: string
    previousChart: string
    userValues: Values
    waves: string[][]
    wavePools: string[] | undefined
    settings: RunSettings
  },
): RunRecord {
  const fresh = newRecord({
    ...run,
    mode: run.strategy.mode,
    targetVersion: request.targetVersion,
    chart: request.chart,
    policy: request.policy.name,
  })
  if (!run.resumingRun || !run.interrupted) return fresh
  // A resumed run keeps its rollback target and the operator's values, with this run's charts,
  // waves and settings.
  const { chart, previousChart, waves, wavePools, settings, policy, releaseInstance } = fresh
  const record: RunRecord = {
    ...run.interrupted,
    chart,
    previousChart,
    waves,
    wavePools,
    settings,
    policy,
    ...(releaseInstance ? { releaseInstance } : {}),
  }
  if (!wavePools) delete record.wavePools
  // A resumed run's waves are this plan's: none of them is stopped or done yet.
  delete record.stoppedBy
  delete record.wavesDone
  return record
}

/**
 * The rollout over the selected nodes: each node's verification pod (its pool's, else the run's),
 * and the waves, pool after pool, each pool's first wave its canary. `--max-unavailable` caps every
 * wave at the room the nodes already unschedulable leave (those kata-lcm has in flight excepted).
 */
function planRollout(
  request: UpgradeRequest,
  matching: readonly NodeView[],
  selected: readonly NodeView[],
  runTemplate: VerificationTemplate | undefined,
) {
  const pooled = request.pools
    ? groupByPool(selected, request.pools)
    : { groups: [{ pool: undefined, nodes: [...selected] }], unpooled: [] }
  if (pooled.unpooled.length > 0)
    throw new PreconditionError(
      `${listed(pooled.unpooled.map((n) => n.name))}: selected but in no pool (${request.pools!.map((p) => p.name).join(', ')}); add a pool without a nodeSelector last to take the rest, or narrow the selection`,
    )
  const templates = pooled.groups.flatMap(({ pool, nodes }) => {
    const { template, field } = podFor(pool?.verification, runTemplate)
    return nodes.map((node) => ({ node, template: template!, field }))
  })
  const poolVerification = request.pools?.some((p) => p.verification)
    ? Object.fromEntries(request.pools.flatMap((p) => (p.verification ? [[p.name, p.verification]] : [])))
    : undefined
  const base: BatchSpec =
    request.batchPercent !== undefined ? { percent: request.batchPercent } : { nodes: request.batchSize }
  const waves = (ordered: readonly NodeView[]) => {
    // Judged only when there is work: a rerun with nothing to do needs no room.
    const room =
      request.maxUnavailable === undefined || ordered.length === 0
        ? undefined
        : roomLeft(request.maxUnavailable, matching)
    const cap = (n: number) => (room === undefined ? n : Math.min(n, room))
    const todo = new Map(ordered.map((n, i) => [n.name, i]))
    const plan = { batchSize: cap(batchNodes(base, selected.length)), waves: [] as string[][] }
    const wavePools: string[] = []
    const pools: PoolPlan[] = []
    for (const { pool, nodes } of pooled.groups) {
      const batchSize = cap(batchNodes(pool?.batch ?? base, nodes.length))
      const canary = pool?.canary ?? request.canary
      const names = nodes
        .filter((n) => todo.has(n.name))
        .sort((a, b) => todo.get(a.name)! - todo.get(b.name)!)
        .map((n) => n.name)
      const poolWaves = planWaves(names, batchSize, canary === undefined ? undefined : cap(canary))
      plan.waves.push(...poolWaves)
      if (!pool) continue
      wavePools.push(...poolWaves.map(() => pool.name))
      pools.push({
        name: pool.name,
        nodes: nodes.map((n) => n.name),
        batchSize,
        ...(canary !== undefined ? { canary: cap(canary) } : {}),
      })
    }
    return request.pools ? { ...plan, wavePools, pools } : { ...plan, wavePools: undefined, pools: undefined }
  }
  return { templates, poolVerification, waves }
}

/** How many nodes a wave may cordon under `--max-unavailable`: the cap less the nodes already unschedulable. */
function roomLeft(maxUnavailable: number, matching: readonly NodeView[]): number {
  const down = matching.filter((n) => n.unschedulable && !isInFlight(readStatus(n.annotations))).map((n) => n.name)
  if (down.length >= maxUnavailable)
    throw new PreconditionError(
      `--max-unavailable ${maxUnavailable}: ${down.length} node(s) matching the selection are already unschedulable (${listed(down)}), so no wave may cordon another; uncordon some or raise --max-unavailable`,
    )
  return maxUnavailable - down.length
}

/**
 * The release is already at the target but nodes still need it (an earlier run did a subset): their
 * rollback target is the newest other chart version in helm history, else --previous-chart's version.
 */
async function rollbackVersion(deps: LifecycleDeps, name: string, request: UpgradeRequest): Promise<string> {
  const other = await versionBefore(deps, request.release, request.targetVersion)
  if (other) return other
  if (request.previousChart) return (await deps.helm.showChart(request.previousChart)).version
  throw new PreconditionError(
    `release ${name} is already at ${request.targetVersion} and its history holds no earlier version, so kata-lcm cannot tell what to roll the remaining nodes back to`,
    {
      suggestions: ['pass --previous-chart with the chart of the version those nodes run'],
    },
  )
}
