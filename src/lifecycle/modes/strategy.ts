import type { AccessCheck, NodeView, PodQuery, PodView } from '../../ports/cluster.port.js'
import type { HelmUpgradeRequest, ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { settlePendingRelease } from '../run/pending-release.js'
import type { Values } from '../settings/values.js'

export type DeploymentMode = 'daemonset' | 'job'

/** What a run will do, as the strategies judge it before any write. */
export interface WavePlan {
  release: ReleaseRef
  targetVersion: string
  previousVersion: string
  waves: string[][]
  /** The release's values (user-supplied), for names that depend on them (env.multiInstallSuffix). */
  userValues: Values
  drain: boolean
  /** The operator accepts a kata-deploy pod restart that kata-deploy itself makes disruptive. */
  acceptRestartHazard: boolean
}

/** Per-node result of a strategy step. */
/**
 * `gone`: the node left the wave while the strategy worked on it, nothing to judge or revert there:
 * `deleted`, or `left` the release (its labels no longer match the release's nodeSelector, so no
 * kata-deploy of it will run there).
 */
export type NodeOutcome = { ok: true } | { ok: false; reason: string; gone?: 'deleted' | 'left' }
export type NodeOutcomes = Map<string, NodeOutcome>

/**
 * What the wave learns from a strategy while it works, so each node moves on as soon as it can (the
 * wave's patches overlap the strategy's reads and the pod lifecycle instead of waiting for them).
 */
export interface WaveHooks {
  /**
   * Awaited for each node before the strategy changes anything on it (the strategy may read
   * meanwhile). False: the node is left alone and gets no outcome (its failure is recorded).
   */
  starting(node: string): Promise<boolean>
  /** A node's outcome, as soon as it is known, while others may still be in progress. */
  settled(node: string, outcome: NodeOutcome): void
}

/** No hooks: every node starts at once, outcomes come at the end. */
export const NO_HOOKS: WaveHooks = { starting: () => Promise.resolve(true), settled: () => undefined }

/** Everything a strategy needs to know about the run; built once from the prerequisites. */
export interface RunContext {
  deps: LifecycleDeps
  release: ReleaseRef
  strategy: DeploymentStrategy
  /** Chart reference for the target version (OCI, repo/name, directory or .tgz). */
  chart: string
  /** Chart reference that yields the previous version (defaults to `chart`). */
  previousChart: string
  targetVersion: string
  /** The chart version the release ran when the run began: the rollback target. */
  previousVersion: string
  /** The release's user-supplied values captured when the run began. */
  userValues: Values
  batchSize: number
  readyTimeoutMs: number
  /** Passed to helm as --timeout. */
  helmTimeout: string
  /** Every helm command run, in order, for the report. */
  helmCommands: string[]
  /** The release instance the run belongs to (RunRecord.releaseInstance), written on every node it prepares. */
  releaseInstance?: string
}

/** The fleet a release covers, from one read of the cluster (`coveredNodes`), for `restoreValues`. */
export interface Coverage {
  /** The nodes the release's kata-deploy is on, each as listed. */
  nodes: NodeView[]
  /** Their kata-deploy pods, as read with them (daemonset; none in job mode, which has no such pods). */
  pods: PodView[]
}

/**
 * How one kata-deploy installation model rolls, awaits and reverts nodes. The wave state machine
 * calls only these; it never branches on the mode.
 */
export interface DeploymentStrategy {
  readonly mode: DeploymentMode
  /** The lowest kata-deploy version whose chart supports driving it wave by wave. */
  readonly minimumVersion: string
  /**
   * Rolls the wave's nodes to the target and waits until each is done or failed; the outcomes of
   * the nodes `hooks.starting` let through. Safe to rerun.
   */
  upgradeWave(ctx: RunContext, nodes: string[], hooks?: WaveHooks): Promise<NodeOutcomes>
  /**
   * How kata-deploy stands on each node now: `ok` with a fingerprint that changes when it restarts
   * or is replaced (a soak compares the two ends), or not ok with the reason. Read-only.
   */
  health(ctx: RunContext, nodes: string[]): Promise<Map<string, { ok: boolean; detail: string }>>
  /** The pods whose changes can change `health`, besides the nodes themselves (a soak watches both). Pure. */
  healthPods(ctx: RunContext): PodQuery | undefined
  /**
   * The nodes this release's kata-deploy is on now, the release running `version`, as the cluster
   * says: a live kata-deploy pod (daemonset); in job mode every node, but from 4.1.0 only those
   * carrying the install's marker (its dispatcher's cleanup takes it off a node the release no
   * longer covers; before, such a node keeps Kata as installed). A deleted node is never among them,
   * whatever its annotations say. Each as listed, with what the mode read to find them (one read of
   * the fleet serves the caller and `restoreValues`). Read-only.
   */
  coveredNodes(ctx: RunContext, version: string): Promise<Coverage>
  /** Puts the given nodes back on the previous version and waits for them. Safe to rerun. */
  revertNodes(ctx: RunContext, nodes: string[]): Promise<NodeOutcomes>
  /** The helm upgrades a run of these waves would make, in order, for --dry-run. Pure. */
  plannedUpgrades(ctx: RunContext, waves: string[][]): HelmUpgradeRequest[]
  /** The helm upgrade a rollback of `nodes` would make. Pure. */
  plannedRevert(ctx: RunContext, nodes: string[]): HelmUpgradeRequest
  /** The rights this mode needs in the release namespace beyond every run's (SelfSubjectAccessReview). Pure. */
  requiredAccess(releaseNamespace: string): AccessCheck[]
  /**
   * This mode's own checks of the selected nodes before any write (throws a PreconditionError).
   * `nodes` is still being read when it is called: the mode's own reads go beside it. Read-only.
   */
  precheck(deps: LifecycleDeps, release: ReleaseRef, nodes: Promise<readonly NodeView[]>, values: Values): Promise<void>
  /**
   * Of `nodes` (annotated `completed` on the target), those whose kata-deploy the cluster does not
   * contradict: daemonset, a Ready pod at the DaemonSet's current revision when the release runs the
   * target, else a Ready pod NOT at it (the release's own older version); job, kata-deploy's install
   * label. Only those are skipped as done; the others are upgraded again. Read-only.
   */
  confirmDone(
    deps: LifecycleDeps,
    release: ReleaseInfo,
    values: Values,
    nodes: readonly string[],
    targetVersion: string,
  ): Promise<Set<string>>
  /** Whether this mode can run these waves between these versions safely; throws a PreconditionError if not. Read-only. */
  checkWaves(deps: LifecycleDeps, plan: WavePlan): Promise<void>
  /**
   * Once the fleet is on one version again (after the last wave, or after rollbacks put every node
   * back): the operator's own values back in the release at `version`, touching no node, so their
   * next plain helm upgrade behaves as before kata-lcm. Returns whether they are back (the run record
   * may then go); false when this mode sees nodes still on another version. `coverage` is what
   * `coveredNodes` just read.
   */
  restoreValues(ctx: RunContext, chart: string, version: string, coverage: Coverage): Promise<boolean>
}

/**
 * Runs a helm upgrade and records it in the run's command log. A revision an earlier attempt's helm
 * left pending is waited out (or cleared once helm's timeout has passed) first.
 */
export async function runUpgrade(ctx: RunContext, request: HelmUpgradeRequest): Promise<void> {
  await settlePendingRelease(ctx.deps, ctx.release, ctx.helmTimeout)
  ctx.helmCommands.push(ctx.deps.helm.describeUpgrade(request))
  await ctx.deps.helm.upgrade(request)
}
