/**
 * What the lifecycle needs from Kubernetes, and nothing more. Views are plain data so the domain
 * never sees a client library type. Every wait is a watch with a deadline in the adapter.
 */
import type { AlertGate } from './alerts.port.js'
import type { ReleaseInfo } from './helm.port.js'

export interface Taint {
  key: string
  value?: string
  effect: string
}

export interface NodeView {
  name: string
  uid: string
  labels: Record<string, string>
  annotations: Record<string, string>
  taints: Taint[]
  unschedulable: boolean
  /** The node's Ready condition is True (absent in views made without its status). */
  ready?: boolean
}

export interface ContainerView {
  name: string
  ready: boolean
  restartCount: number
  /** When the container's current (or last, when terminated) run started (RFC 3339). */
  startedAt?: string
  /** `waiting`, `running` or `terminated`, with the kubelet's reason and, when terminated, the exit code. */
  state: 'waiting' | 'running' | 'terminated' | 'unknown'
  reason?: string
  message?: string
  exitCode?: number
  image?: string
}

export interface PodView {
  name: string
  namespace: string
  uid: string
  nodeName?: string
  phase: string
  labels: Record<string, string>
  annotations: Record<string, string>
  /** `spec.runtimeClassName`: a Kata pod names a Kata RuntimeClass. */
  runtimeClassName?: string
  /** Set once deletion started: a terminating pod never counts as the replacement. */
  deletionTimestamp?: string
  ready: boolean
  containers: ContainerView[]
  conditions: { type: string; status: string; reason?: string; message?: string }[]
  ownerKinds: string[]
  /** A static pod's mirror on the API server (annotation kubernetes.io/config.mirror). */
  mirror: boolean
  /** Names of its emptyDir volumes (their data is lost when the pod goes). */
  emptyDirs: string[]
}

export interface JobView {
  name: string
  namespace: string
  uid: string
  labels: Record<string, string>
  annotations: Record<string, string>
  /** `Complete` or `Failed` once the Job controller decided; `Running` before. */
  outcome: 'Running' | 'Complete' | 'Failed'
  message?: string
  creationTimestamp?: string
  /** The node the Job's pod is bound to (pod template spec.nodeName, or a kubernetes.io/hostname nodeSelector). */
  targetNode?: string
  /** The pod template's container images. */
  images: string[]
}

export interface DaemonSetView {
  name: string
  namespace: string
  generation: number
  observedGeneration: number
  updateStrategy: string
  desiredNumberScheduled: number
}

export interface PodQuery {
  namespace?: string
  labelSelector?: string
  fieldSelector?: string
}

/** A `decide` callback returns a value to stop waiting, or undefined to keep watching. */
export type Decide<V, T> = (current: V) => T | undefined

export type WaitResult<T, V> = { done: true; value: T } | { done: false; last: V }

export type EvictionResult = 'evicted' | 'gone' | 'blocked'

export interface NodePatch {
  /** Keys to set; `null` removes a key. Other annotations are never touched. */
  annotations?: Record<string, string | null>
  unschedulable?: boolean
}

export interface NodeEvent {
  reason: string
  message: string
  type: 'Normal' | 'Warning'
}

/** Nodes: read, select, patch (never clobbering other keys), and the story in Events. */
export interface NodeStore {
  listNodes(labelSelector?: string): Promise<NodeView[]>
  getNode(name: string): Promise<NodeView | undefined>
  /** Merge-patches only the given annotation keys and/or spec.unschedulable. Idempotent. */
  patchNode(name: string, patch: NodePatch): Promise<NodeView>
  /** Best effort: a failure to record an Event never fails the lifecycle. */
  recordNodeEvent(node: NodeView, event: NodeEvent): Promise<void>
  /**
   * Watches the nodes (`labelSelector`'s, or all) until `decide` returns a value or `timeoutMs`
   * passes. While `keepWatches` holds, waits on the same selector share one watch.
   */
  waitForNodes<T>(
    labelSelector: string | undefined,
    decide: Decide<NodeView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, NodeView[]>>
}

/** Pods: the kata-deploy pods, the verification pods, and eviction for drain. */
export interface PodStore {
  listPods(query: PodQuery): Promise<PodView[]>
  /** Creates the pod from a manifest (already rendered). */
  createPod(namespace: string, manifest: Record<string, unknown>): Promise<PodView>
  /** Deletes; a pod that is already gone is not an error. */
  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void>
  /**
   * Watches pods matching `query` until `decide` returns a value or `timeoutMs` passes. While
   * `keepWatches` holds, waits on the same query (with no field selector) share one watch.
   */
  waitForPods<T>(
    query: PodQuery,
    decide: Decide<PodView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, PodView[]>>
  /**
   * Eviction API: `blocked` when a PodDisruptionBudget answered 429. `dryRun`: the API server judges
   * the eviction (PodDisruptionBudgets included) and changes nothing.
   */
  evictPod(namespace: string, name: string, options?: { dryRun?: boolean }): Promise<EvictionResult>
  /** Events about a pod and its last log lines, for failure reports. Never throws. */
  podDiagnostics(namespace: string, name: string, tailLines: number): Promise<{ events: string[]; logTail: string[] }>
}

/** Workloads kata-deploy creates: its DaemonSet (daemonset mode) and install Jobs (job mode). */
export interface WorkloadStore {
  getDaemonSet(namespace: string, name: string): Promise<DaemonSetView | undefined>
  /**
   * The `controller-revision-hash` of the DaemonSet's current revision, once the controller has
   * observed the latest spec (waits by watching for observedGeneration >= generation).
   */
  daemonSetRevisionHash(namespace: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<string>
  listJobs(namespace: string, labelSelector?: string): Promise<JobView[]>
  waitForJobs<T>(
    namespace: string,
    labelSelector: string,
    decide: Decide<JobView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, JobView[]>>
}

/** One revision in helm's own storage of a release (the Secret `sh.helm.release.v1.<release>.v<N>`). */
export interface HelmRevisionView {
  revision: number
  /** deployed, superseded, failed, pending-upgrade, ... (the Secret's `status` label) */
  status: string
  /** When helm last wrote the revision (its `modifiedAt` label, Unix seconds), ISO 8601. */
  modifiedAt?: string
}

/** A release as helm's storage Secret of its newest revision holds it. */
export interface StoredRelease {
  /** What `helm get metadata` says of it; `deployedAt` is helm's `info.last_deployed` as stored. */
  release: ReleaseInfo
  /** helm's `info.first_deployed`: the same in every revision of one install. */
  firstDeployed?: string
}

/** Helm's release storage, read directly: the release, and a wait for a helm command of another process to end. */
export interface HelmStorageStore {
  /**
   * The release as helm's storage Secret of its newest revision holds it (helm's default driver):
   * what `helm get metadata` says, and its install's `first_deployed`. Undefined when there is no
   * such Secret (another storage driver, or no release). Read-only; one list of the release's
   * revisions, where a helm process takes a few hundred ms to start (and `helm status` also lists
   * every resource of the release and the pods they own).
   */
  helmStoredRelease(namespace: string, release: string): Promise<StoredRelease | undefined>
  /** Watches the release's revisions until `decide` returns a value or `timeoutMs` passes. Read-only. */
  waitForHelmRevisions<T>(
    namespace: string,
    release: string,
    decide: Decide<HelmRevisionView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, HelmRevisionView[]>>
}

/** One thing a run will do, as RBAC names it (a SelfSubjectAccessReview). */
export interface AccessCheck {
  verb: string
  /** e.g. `pods`, `pods/log`, `pods/eviction`, `daemonsets.apps`, `leases.coordination.k8s.io`. */
  resource: string
  /** Absent for cluster-scoped resources or "in every namespace". */
  namespace?: string
}

/** What this identity may do, and what exists, asked before the first write. */
export interface AccessStore {
  /** The checks the API server denies to this identity (empty: all allowed). Read-only. */
  deniedAccess(checks: readonly AccessCheck[]): Promise<AccessCheck[]>
  /** Whether the namespace exists. Read-only. */
  namespaceExists(name: string): Promise<boolean>
}

/** The whole cluster port: small roles composed. */
export interface Cluster
  extends NodeStore, PodStore, WorkloadStore, RunStore, LockStore, AccessStore, HelmStorageStore, PolicyStore {
  /** API server reachable and this identity can read nodes. Read-only. */
  ping(): Promise<void>
  /**
   * Keeps the watches of pod waits running between waits (a run's waves), until the returned
   * release is called: each wave's waits start from the watch the last left, with no new list.
   */
  keepWatches(): () => void
}

/** A maintenance window as a run records it (src/lifecycle/gates/window.ts reads and judges it). */
export interface MaintenanceWindow {
  /** The days a window starts on (`Mon` ... `Sun`); every day when empty. */
  days: string[]
  /** `HH:MM`, 24-hour, local to `timeZone`; an end not after the start crosses midnight. */
  start: string
  end: string
  /** IANA name, e.g. `Europe/Berlin`. */
  timeZone: string
}

/**
 * What a run records when it starts (a Secret beside the release), so a rerun after a crash, or
 * the next Argo step, knows the rollback target even after the release itself moved on.
 */
export interface RunRecord {
  runId: string
  release: string
  namespace: string
  mode: string
  targetVersion: string
  /** The chart version the release ran when the run began. */
  previousVersion: string
  previousRevision: number
  chart: string
  previousChart: string
  /** The operator's own user-supplied values at the start, restored after the last wave. */
  userValues: Record<string, unknown>
  startedAt: string
  /** The planned waves, so each Argo step (one process per phase) acts on the same nodes. */
  waves: string[][]
  /** With pools: the pool of each wave (its verification pod is the pool's own, when it has one). */
  wavePools?: string[]
  settings: RunSettings
  /** Set when a wave failed: later waves refuse to start (fail-fast across Argo steps). */
  stoppedBy?: string
  /**
   * The last wave whose `step wave --wait-turn` finished (Argo, overlapping waves): the next wave's
   * pod, started beside it, waits for this before it takes the lease.
   */
  wavesDone?: number
  /** `kata-lcm pause`: the next wave waits until `kata-lcm resume` clears it. */
  paused?: { by: string; at: string }
  /** Set while the next wave waits for a maintenance window (RunSettings.windows) to open. */
  waitingForWindow?: { wave: number; opensAt: string }
  /** Set while firing alerts (RunSettings.alerts) hold the next wave: since when, and which. */
  heldByAlerts?: { wave: number; since: string; reason: string }
  /** The fleet policy the run was planned under, as its first line named it (absent in earlier records). */
  policy?: string
  /** Who planned the run (the lease holder: `argo/<workflow>` or a CLI run id). */
  holder?: string
  /**
   * The release instance the run belongs to (helm's first-deployed time of the install); absent in
   * records of earlier kata-lcm versions. A record of another install is never resumed or trusted.
   */
  releaseInstance?: string
}

/** The run's options, recorded so every later step and rerun uses the same ones. */
export interface RunSettings {
  batchSize: number
  drain: boolean
  drainTimeoutMs: number
  /** Absent in records of earlier kata-lcm versions: evict nothing beyond what a controller recreates. */
  drainPolicy?: { force: boolean; deleteEmptyDirData: boolean }
  readyTimeoutMs: number
  helmTimeout: string
  /** The run's verification pod; `source` is empty only when every pool brings its own. */
  verification: { source: string; origin: string; namespace: string; timeoutMs: number }
  /** Pools with a verification pod (or timeout) of their own, by name. */
  poolVerification?: Record<string, { source: string; origin: string; timeoutMs?: number }>
  /** After each wave but the last: how long its nodes soak in service before they are re-checked. */
  soakMs?: number
  /** Maintenance windows: a wave starts only inside one (none: any time). */
  windows?: MaintenanceWindow[]
  /** `stop`: a node whose running Kata pods did not come through its upgrade stops the run before the next wave. */
  onWorkloadDisruption?: 'report' | 'stop'
  /** The alert gate: matching firing alerts (or no answer) hold each wave until they clear. */
  alerts?: AlertGate
}

export interface RunStore {
  readRun(namespace: string, release: string): Promise<RunRecord | undefined>
  /** Creates or replaces the record. Idempotent. */
  writeRun(record: RunRecord): Promise<void>
  /** Removes the record; a missing one is not an error. */
  clearRun(namespace: string, release: string): Promise<void>
  /** Watches the record (undefined while there is none) until `decide` returns a value or `timeoutMs` passes. Read-only. */
  waitForRun<T>(
    namespace: string,
    release: string,
    decide: (record: RunRecord | undefined) => T | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, RunRecord | undefined>>
}

/** The fleet's policy document (a ConfigMap) and what the cluster says about Kata (its RuntimeClasses). */
export interface PolicyStore {
  /** The policy document's text, or undefined when there is none. Read-only. */
  readPolicy(namespace: string): Promise<string | undefined>
  /** Creates or replaces the policy document. */
  writePolicy(namespace: string, text: string): Promise<void>
  /** Every RuntimeClass: name and handler. Read-only. */
  listRuntimeClasses(): Promise<{ name: string; handler: string }[]>
}

export interface LockInfo {
  holder: string
  acquiredAt: string
  renewedAt: string
  ttlSeconds: number
}

export type LockAttempt = { acquired: true } | { acquired: false; current: LockInfo }

/** The single-runner lock: a coordination.k8s.io Lease. */
export interface LockStore {
  /** Takes the lease when it is free, expired, or already held by `holder`. Never steals a live lease. */
  tryLock(namespace: string, name: string, holder: string, ttlSeconds: number, now: Date): Promise<LockAttempt>
  /** Renews the lease if `holder` still holds it; false when someone else took it. */
  renewLock(namespace: string, name: string, holder: string, now: Date): Promise<boolean>
  /**
   * Renews the lease one last time for `holder`'s next process (an Argo step hands it to the next),
   * leaving on it what that process starts from (the client's request pacing this one reached);
   * false when someone else took it.
   */
  handOverLock(namespace: string, name: string, holder: string, now: Date): Promise<boolean>
  /** Releases the lease held by `holder`, or any holder's when `holder` is undefined (breaking a stale lock). */
  unlock(namespace: string, name: string, holder?: string): Promise<LockInfo | undefined>
}
