import semver from 'semver'
import type { NodeView, RunRecord, RunSettings } from '../../ports/cluster.port.js'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps } from '../context.js'
import { InputError, PreconditionError } from '../errors.js'
import { Annotation, memoryFor } from '../engine/node-state.js'
import { checkSchedulable, parseVerificationTemplate, type VerificationTemplate } from '../engine/verification.js'
import type { DeploymentStrategy } from '../modes/strategy.js'
import { groupByPool, podFor } from '../run/pools.js'
import { newRecord } from '../run/record.js'
import type { RollbackRequest } from '../settings/request.js'
import { checkAccess } from './access.js'
import { checkNamespace, checkReleaseRef } from './names.js'
import { startReads, type Reads } from './reads.js'
import { checkRelease, releaseStrategy, versionBefore } from './release-checks.js'

/** What `rollback NODE` checked before any write, and the one-node run it plans: its record. */
export interface RollbackPlan {
  release: ReleaseInfo
  strategy: DeploymentStrategy
  node: NodeView
  toVersion: string
  /** The node's verification pod (its pool's own, else the request's), if any. */
  template: VerificationTemplate | undefined
  /**
   * The run's record, as every driver's planner returns one: the release at its version, the node
   * going back to `toVersion`, the operator's values (an unfinished run's capture, else the release's).
   */
  record: RunRecord
  /** The run record of this install an earlier run left (it keeps the operator's values until they are back), if any. */
  unfinished: RunRecord | undefined
}

/**
 * Everything `rollback NODE` checks before any write, read the way the upgrade's planner reads
 * (reads.ts): helm's version, the access (the run's and the mode's), the release and its install,
 * the node and its verification pod, the mode, the version to go back to (--to-version, else the
 * node's recorded previous version, else helm history) and its chart; and the run's record. Given
 * the plan made before the lock (`earlier`), it checks again under it, reading again what another
 * run may have changed meanwhile (the release, the run record, the node), as the upgrade's planner
 * does. Read-only.
 */
export async function checkRollbackPrerequisites(
  deps: LifecycleDeps,
  request: RollbackRequest,
  run: { runId: string; holder: string },
  earlier?: RollbackPlan,
): Promise<RollbackPlan> {
  checkReleaseRef(request.release)
  if (request.verification) checkNamespace('--verification-namespace', request.verification.namespace)
  if (request.toVersion !== undefined && semver.valid(request.toVersion) !== request.toVersion)
    throw new InputError('--to-version', `"${request.toVersion}" is not a semantic version; use e.g. 3.27.0`)
  const runTemplate = request.verification
    ? parseVerificationTemplate(request.verification.source, request.verification.origin)
    : undefined
  const reads = startReads(
    deps,
    {
      reach: {
        release: request.release,
        // Where a verification pod of the node would run: the request's, else its pools' (the same flag).
        verificationNamespace:
          request.verification?.namespace ??
          (request.pools?.pools.some((p) => p.verification) ? request.pools.namespace : undefined),
        policyNamespace: request.policy.namespace,
        soak: false,
        drain: false,
      },
      nodes: async () => {
        const node = await deps.cluster.getNode(request.node)
        return node ? [node] : []
      },
    },
    earlier && READS.get(earlier),
  )
  await reads.helm()
  await reads.access()
  await reads.ping()
  const release = checkRelease(request.release, await reads.release())
  const instance = await reads.instance()
  const [found] = await reads.nodes()
  if (!found) throw new InputError('NODE', `no node named "${request.node}" (kubectl get nodes lists them)`)
  // What kata-lcm wrote on the node for another install of the release is not its history here.
  const node = memoryFor(found, instance)
  const { template, verification } = nodePod(request, node, runTemplate)
  const strategy = releaseStrategy(release, await reads.allValues())
  await checkAccess(deps, strategy.requiredAccess(request.release.namespace))
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
  await reads.chart(request.chart, toVersion, '--chart', '')
  // Another install's record keeps nothing of this one's: not its values, not its rollback target.
  const unfinished = await reads.run()
  const record = newRecord({
    ...run,
    release,
    mode: strategy.mode,
    targetVersion: release.chartVersion,
    previousVersion: toVersion,
    chart: request.chart,
    previousChart: request.chart,
    // Captured once: after an earlier rollback the release's values carry kata-lcm's overrides.
    userValues: await reads.userValues(),
    startedAt: deps.clock.now().toISOString(),
    waves: [[node.name]],
    settings: rollbackSettings(request, verification),
    policy: request.policy.name,
    releaseInstance: instance,
  })
  const plan = { release, strategy, node, toVersion, template, record, unfinished }
  READS.set(plan, reads)
  return plan
}

/** The reads each plan was made from, for the plan that checks it again under the lock. */
const READS = new WeakMap<RollbackPlan, Reads>()

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
