import semver from 'semver'
import type { NodeView, PodView } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { kataDeployNames } from '../context.js'
import { describeError, PreconditionError } from '../errors.js'
import { helmVersionProblem } from '../checks/helm-version.js'
import { checkReleaseRef } from '../checks/names.js'
import { fromStorageOrHelm } from '../checks/release-read.js'
import { early } from '../checks/reads.js'
import { REVISION_LABEL } from '../modes/kata-deploy-pods.js'
import {
  Annotation,
  memoryFor,
  NODE_STATUSES,
  readStatus,
  runOfInstance,
  type NodeStatus,
} from '../engine/node-state.js'
import { cordonedByUs } from '../engine/node-ops.js'
import { describeSelection, selectNodes, validateSelection, type NodeSelection } from '../run/plan.js'

export interface NodeStatusRow {
  node: string
  /** The node's lifecycle state, `-` when kata-lcm never touched it (counted as `untouched`). */
  status: NodeStatus | '-'
  version: string
  cordoned: boolean
  /** Who made the node unschedulable, when it is. */
  cordonedBy?: 'kata-lcm' | 'operator'
  /** daemonset mode: whether the node's kata-deploy pod runs the DaemonSet's current revision. */
  kataDeployPod: 'current' | 'outdated' | 'missing' | 'n/a'
  /** The kata-deploy version the node's pod runs (its image tag), when there is a pod. */
  podVersion?: string
  /** How that version relates to the release's chart version. */
  podRelation?: 'same as the release' | 'newer than the release' | 'older than the release'
  runId?: string
  previousVersion?: string
  phaseStartedAt?: string
  lastError?: string
  /** The Kata pods that did not come through the node's last upgrade (`ns/pod restarted, ...`). */
  disruptedWorkloads?: string
}

/** The versioned shape of `kata-lcm status -o json|yaml` (and `--json`), documented in docs/status.md. */
export const STATUS_API_VERSION = 'kata-lcm.katacontainers.io/v1alpha1'
export const STATUS_KIND = 'Status'

/** The keys of `counts`: every node state, and `untouched` for a node kata-lcm never touched. */
export type StatusCountKey = NodeStatus | 'untouched'
export const STATUS_COUNT_KEYS: readonly StatusCountKey[] = [...NODE_STATUSES, 'untouched']

export interface StatusReport {
  apiVersion: typeof STATUS_API_VERSION
  kind: typeof STATUS_KIND
  /** helmProblem: why helm could not say anything about the release (it may well exist). */
  release: ReleaseRef & { chartVersion?: string; status?: string; helmProblem?: string }
  /** The run in flight, when there is one, and its pause (kata-lcm pause). */
  run?: {
    runId: string
    targetVersion: string
    paused?: { by: string; at: string }
    /** The next wave waits for a maintenance window to open. */
    waitingForWindow?: { wave: number; opensAt: string }
    /** Firing alerts (the alert gate) hold the next wave: since when, and which. */
    heldByAlerts?: { wave: number; since: string; reason: string }
  }
  selection: string
  /** How many selected nodes are in each state; every key present, 0 included. */
  counts: Record<StatusCountKey, number>
  rows: NodeStatusRow[]
}

/** The number of rows in each state, every state present (0 included). Pure. */
export function countByState(rows: readonly Pick<NodeStatusRow, 'status'>[]): Record<StatusCountKey, number> {
  const counts = Object.fromEntries(STATUS_COUNT_KEYS.map((k) => [k, 0])) as Record<StatusCountKey, number>
  for (const row of rows) counts[row.status === '-' ? 'untouched' : row.status]++
  return counts
}

const REVISION_WAIT_MS = 10_000

const firstLine = (error: unknown): string | undefined => describeError(error).split('\n')[0]

/**
 * One node's row: its state from its annotations, its kata-deploy pod (`pods`, the live ones on it)
 * against the DaemonSet's revision `hash` (null: no DaemonSet, job mode), and the version that pod
 * runs beside the release's `chartVersion`. Pure.
 */
function statusRow(
  node: NodeView,
  pods: readonly PodView[],
  hash: string | undefined | null,
  chartVersion: string | undefined,
): NodeStatusRow {
  const a = node.annotations
  const row: NodeStatusRow = {
    node: node.name,
    status: readStatus(a) ?? '-',
    version: a[Annotation.currentVersion] ?? '-',
    cordoned: node.unschedulable,
    kataDeployPod:
      hash === null
        ? 'n/a'
        : pods.length === 0
          ? 'missing'
          : pods.some((p) => p.labels[REVISION_LABEL] === hash)
            ? 'current'
            : 'outdated',
  }
  if (node.unschedulable) row.cordonedBy = cordonedByUs(node) ? 'kata-lcm' : 'operator'
  const image = pods.flatMap((p) => p.containers.map((c) => c.image ?? '')).find((i) => i.includes(':'))
  const podVersion = image?.split(':').at(-1)
  if (podVersion) {
    row.podVersion = podVersion
    if (chartVersion && semver.valid(podVersion) && semver.valid(chartVersion)) {
      row.podRelation = semver.eq(podVersion, chartVersion)
        ? 'same as the release'
        : semver.gt(podVersion, chartVersion)
          ? 'newer than the release'
          : 'older than the release'
    }
  }
  for (const [key, annotation] of [
    ['runId', Annotation.runId],
    ['previousVersion', Annotation.previousVersion],
    ['phaseStartedAt', Annotation.phaseStartedAt],
    ['lastError', Annotation.lastError],
    ['disruptedWorkloads', Annotation.disruptedWorkloads],
  ] as const) {
    if (a[annotation]) row[key] = a[annotation]
  }
  return row
}

/**
 * `kata-lcm status`: one row per selected node, from its annotations and its kata-deploy pod. Every
 * read that needs nothing from another goes at once; the release is read as the planner reads it
 * (helm's storage Secret, else helm). Read-only.
 */
export async function nodeStatus(
  deps: LifecycleDeps,
  release: ReleaseRef,
  selection: NodeSelection,
): Promise<StatusReport> {
  checkReleaseRef(release)
  validateSelection(selection)
  const { cluster, helm } = deps
  // status still reports the nodes when helm cannot be run, but says so instead of "not found".
  // A helm older than kata-lcm supports is named as such, not by the command it lacks.
  const helmChecked = helm.version().then(helmVersionProblem, (error: unknown) => firstLine(error))
  // helm's storage where it can be read; helm itself where not, whose failure is the helm problem shown.
  const storage = cluster.helmStoredRelease(release.namespace, release.name).catch(() => undefined)
  const stored = fromStorageOrHelm(storage, deps, release)
  const listed = early(cluster.listNodes(selection.labelSelector))
  // The values name the DaemonSet and its pods: asked at once, used only when the release is there.
  const values = early(helm.values(release.name, release.namespace, { all: true }).catch(() => ({})))
  const recorded = early(cluster.readRun(release.namespace, release.name).catch(() => undefined))
  await cluster.ping()
  let helmProblem = await helmChecked
  const info =
    helmProblem !== undefined
      ? undefined
      : await stored.release().catch((error: unknown) => {
          helmProblem = firstLine(error)
          return undefined
        })
  // Memory of another install of the release (uninstalled and installed again) is not this one's.
  const instance = info ? await stored.instance().catch(() => undefined) : undefined
  const nodes = selectNodes(await listed(), selection).map((n) => memoryFor(n, instance))
  if (nodes.length === 0) throw new PreconditionError(`no node matches ${describeSelection(selection)}`)
  const names = kataDeployNames(info ? await values() : {})
  // The pods are read beside the DaemonSet, and their answer (or failure) used only in daemonset mode.
  const podsRead = early(cluster.listPods({ namespace: release.namespace, labelSelector: names.podSelector }))
  const daemonSet = await cluster.getDaemonSet(release.namespace, names.daemonSet)
  const [hash, pods] = daemonSet
    ? await Promise.all([
        cluster.daemonSetRevisionHash(release.namespace, names.daemonSet, REVISION_WAIT_MS),
        podsRead(),
      ])
    : [undefined, []]
  const rows = nodes.map((node) =>
    statusRow(
      node,
      pods.filter((p) => p.nodeName === node.name && !p.deletionTimestamp),
      daemonSet ? hash : null,
      info?.chartVersion,
    ),
  )
  // No release, or another install of it: its record is history, not a run in flight.
  const released = info !== undefined || helmProblem !== undefined
  const record = released ? runOfInstance(await recorded(), instance) : undefined
  return {
    apiVersion: STATUS_API_VERSION,
    kind: STATUS_KIND,
    release: {
      ...release,
      ...(info ? { chartVersion: info.chartVersion, status: info.status } : {}),
      ...(helmProblem ? { helmProblem } : {}),
    },
    ...(record
      ? {
          run: {
            runId: record.runId,
            targetVersion: record.targetVersion,
            ...(record.paused ? { paused: record.paused } : {}),
            ...(record.waitingForWindow ? { waitingForWindow: record.waitingForWindow } : {}),
            ...(record.heldByAlerts ? { heldByAlerts: record.heldByAlerts } : {}),
          },
        }
      : {}),
    selection: describeSelection(selection),
    counts: countByState(rows),
    rows,
  }
}
