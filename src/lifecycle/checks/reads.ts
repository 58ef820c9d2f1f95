/**
 * What a planner reads before it decides, every read started at once: the upgrade's planner and
 * `rollback NODE`'s read the same things the same way (helm's version, the access, the API server,
 * the release and its install from helm's storage, the run record of this install, the release's
 * values, the charts, the nodes).
 */
import type { NodeView, RunRecord } from '../../ports/cluster.port.js'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { runOfInstance } from '../engine/node-state.js'
import type { Values } from '../settings/values.js'
import { checkRunAccess, type RunReach } from './access.js'
import { checkHelmVersion } from './helm-version.js'
import { checkChart } from './release-checks.js'
import { fromStorageOrHelm } from './release-read.js'

/** What a planner reads: the run's reach (its release and what it will touch) and its nodes. */
export interface ReadScope {
  reach: RunReach
  /** The chart to check at once (the target's), if the planner knows it before reading. */
  chart?: { ref: string; version: string; flag: string; hint: string }
  /** The nodes the run may touch. */
  nodes: () => Promise<NodeView[]>
}

/** A read to await where it is needed (started already, or on the first ask). */
export type Later<T> = () => Promise<T>

export interface Reads {
  helm: Later<void>
  access: Later<void>
  ping: Later<void>
  release: Later<ReleaseInfo | undefined>
  /** The run record of this install of the release, if any. */
  run: Later<RunRecord | undefined>
  /** The run record beside the release, of whichever install. */
  recorded: Later<RunRecord | undefined>
  instance: Later<string | undefined>
  allValues: Later<Values>
  helmUserValues: Later<Values>
  /** The operator's own values: an earlier run's capture (this install's), else the release's. */
  userValues: Later<Values>
  /** The charts checked so far, by chart, version and flag. */
  charts: Map<string, Promise<void>>
  chart: (ref: string, version: string, flag: string, hint: string) => Promise<void>
  /** The scope's chart checked (nothing when it named none). */
  targetChart: Later<void>
  nodes: Later<NodeView[]>
}

/**
 * Every read that needs nothing from another, started at once (each helm call is a process); each
 * is awaited where it stands in the checks' order, so a failure reads as if run one by one. Given
 * the reads of an earlier plan (`before`), it takes from them what cannot have changed: helm's
 * version, the access and ping, the charts checked, and, while the release's revision and its
 * deployment time are the same, its instance (`helm status`, which lists every pod of the release)
 * and its values. The release itself, the run record and the nodes are read again.
 */
export function startReads(deps: LifecycleDeps, scope: ReadScope, before?: Reads): Reads {
  const { helm, cluster } = deps
  const ref: ReleaseRef = scope.reach.release
  const { name, namespace } = ref
  // helm's storage read once, for the release and its install (helm itself where it holds neither).
  const stored = fromStorageOrHelm(cluster.helmStoredRelease(namespace, name), deps, ref)
  const release = stored.release()
  const unchanged = before
    ? Promise.all([release, before.release()]).then(([now, then]) => sameRevision(now, then))
    : Promise.resolve(false)
  const sinceBefore = <T>(kept: (() => Promise<T>) | undefined, read: () => Promise<T>) =>
    unchanged.then((same) => (same && kept ? kept() : read()))
  // The record of this install of the release only: one of another install (the release uninstalled
  // and installed again under the same name) is history, never resumed nor its values restored.
  const recorded = cluster.readRun(namespace, name)
  const instance = sinceBefore(before?.instance, stored.instance)
  const run = Promise.all([recorded, instance]).then(([record, current]) => runOfInstance(record, current))
  const helmUserValues = once(() =>
    sinceBefore(before?.helmUserValues, () => helm.values(name, namespace, { all: false })),
  )
  const charts = before?.charts ?? new Map<string, Promise<void>>()
  const chart = (chartRef: string, version: string, flag: string, hint: string) => {
    const key = JSON.stringify([chartRef, version, flag])
    if (!charts.has(key)) charts.set(key, checkChart(deps, chartRef, version, flag, hint))
    return charts.get(key)!
  }
  const target = scope.chart
  return {
    helm: before?.helm ?? early(checkHelmVersion(helm)),
    access: before?.access ?? early(checkRunAccess(deps, scope.reach)),
    ping: before?.ping ?? early(cluster.ping()),
    release: early(release),
    run: early(run),
    recorded: early(recorded),
    instance: early(instance),
    allValues: early(sinceBefore(before?.allValues, () => helm.values(name, namespace, { all: true }))),
    helmUserValues,
    // The operator's own values from helm only when no earlier run captured them (a resumed run has them).
    userValues: early(run.then((record) => record?.userValues ?? helmUserValues())),
    charts,
    chart,
    targetChart: early(target ? chart(target.ref, target.version, target.flag, target.hint) : Promise.resolve()),
    nodes: early(scope.nodes()),
  }
}

/** The release as it was: the same revision, status and deployment (helm's deployedAt), when helm says it. Pure. */
function sameRevision(now: ReleaseInfo | undefined, then: ReleaseInfo | undefined): boolean {
  return (
    now !== undefined &&
    then !== undefined &&
    now.deployedAt !== undefined &&
    now.deployedAt === then.deployedAt &&
    now.revision === then.revision &&
    now.status === then.status
  )
}

/** A read started the first time it is asked for, then the same promise. */
function once<T>(read: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined
  return () => (started ??= read())
}

/** Starts a read now; the returned function awaits it (its value, or its failure) where it is needed. */
export function early<T>(read: Promise<T>): () => Promise<T> {
  read.catch(() => undefined) // awaited later: not an unhandled rejection meanwhile
  return () => read
}
