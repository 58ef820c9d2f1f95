/**
 * The status contract: what kata-lcm writes on a Node, read back by every later run, by the Argo
 * steps and by operators (`kubectl get nodes -L ...`). The state lives on the cluster.
 */

/** The design's annotation keys (kata-lifecycle-manager-design.txt, "Status tracking"). */
export const STATUS_ANNOTATION = 'katacontainers.io/kata-lifecycle-manager-status'
export const VERSION_ANNOTATION = 'katacontainers.io/kata-current-version'

/** Project-specific keys: what a rerun needs to resume safely. */
const PREFIX = 'kata-lcm.katacontainers.io'
export const Annotation = {
  status: STATUS_ANNOTATION,
  currentVersion: VERSION_ANNOTATION,
  /** The run that last touched the node. */
  runId: `${PREFIX}/run-id`,
  /** `true` when the node was unschedulable before kata-lcm cordoned it: never uncordon it then. */
  wasUnschedulable: `${PREFIX}/was-unschedulable`,
  /** `true` while the node is cordoned because kata-lcm cordoned it. */
  cordonedByUs: `${PREFIX}/cordoned-by-kata-lcm`,
  /** The kata-deploy chart version the node ran before this run: the rollback target. */
  previousVersion: `${PREFIX}/previous-version`,
  /** The version this run is moving the node to. */
  targetVersion: `${PREFIX}/target-version`,
  /** When the current phase started (RFC 3339). */
  phaseStartedAt: `${PREFIX}/phase-started-at`,
  /** The last error, one line, empty when the last phase went well. */
  lastError: `${PREFIX}/last-error`,
  /** The run whose soak the node passed (a retried step does not soak it again). */
  soakedInRun: `${PREFIX}/soaked-in-run`,
  /**
   * What the node's kata-deploy was when its verification passed (the strategy's health detail,
   * e.g. its pod and restarts), written with `completed` when a soak follows: the soak judges the
   * node against it, so a pod replaced before the soak's first look is still a change.
   */
  verifiedHealth: `${PREFIX}/verified-kata-deploy`,
  /**
   * The release instance the node's memory was written for (helm's first-deployed time of the
   * install): memory of another install of the release (uninstalled, installed again) is not trusted.
   */
  releaseInstance: `${PREFIX}/release-instance`,
  /**
   * The Kata pods running on the node when its upgrade began (workloads.ts's record, JSON): compared
   * once the node verified, then removed.
   */
  kataWorkloads: `${PREFIX}/kata-workloads`,
  /**
   * The Kata pods that did not come through the node's last upgrade (`ns/pod restarted, ns/pod2
   * vanished`); removed when an upgrade of the node disrupted none.
   */
  disruptedWorkloads: `${PREFIX}/disrupted-workloads`,
} as const

/**
 * The node as kata-lcm may read it for `instance` (the release's current install): kata-lcm's memory
 * on it (status, versions, run id, ...) is dropped when it names another install of the release, so
 * the node counts as new; the node itself (labels, cordon) is untouched. Memory written before
 * kata-lcm named instances, or an unknown instance, is kept as it is. Pure.
 */
export function memoryFor<N extends { annotations: Record<string, string> }>(node: N, instance: string | undefined): N {
  const recorded = node.annotations[Annotation.releaseInstance]
  if (instance === undefined || recorded === undefined || recorded === instance) return node
  const memory = new Set<string>(Object.values(Annotation))
  return {
    ...node,
    annotations: Object.fromEntries(Object.entries(node.annotations).filter(([key]) => !memory.has(key))),
  }
}

/** Whether `recorded` (a run record's instance) is another install of the release than `current`. Pure. */
export function isOtherInstance(recorded: string | undefined, current: string | undefined): boolean {
  return recorded !== undefined && current !== undefined && recorded !== current
}

/** The run record, if it is of install `current` of the release: another install's is history. Pure. */
export function runOfInstance<R extends { releaseInstance?: string }>(
  record: R | undefined,
  current: string | undefined,
): R | undefined {
  return isOtherInstance(record?.releaseInstance, current) ? undefined : record
}

export type NodeStatus =
  /**
   * Written by kata-lcm before 2026-12 ahead of the cordon (run id and prior schedulability
   * recorded, nothing changed yet); now the record and the cordon are one write (`cordoned`). A
   * node found in it is resumed.
   */
  | 'preparing'
  /**
   * Entered first: the run id, the prior schedulability and the previous version are recorded and
   * the node is unschedulable (kata-lcm cordoned it, or it already was), in one write.
   */
  | 'cordoned'
  /** Optional: evicting workloads through the Eviction API. */
  | 'draining'
  /** The new kata-deploy is being rolled onto the node (pod restart or install Job). */
  | 'upgrading'
  /** The new kata-deploy is ready on the node; the user's verification pod runs (or is about to). */
  | 'verifying'
  /** Verified, back in service (if kata-lcm cordoned it), on the target version. */
  | 'completed'
  /** Reverting the node to its previous version after a failure or on request. */
  | 'rolling-back'
  /** Back on the previous version and back in service (if kata-lcm cordoned it). */
  | 'rolled-back'
  /** The rollback itself failed: the node stays cordoned; a person must act. */
  | 'failed'

export const NODE_STATUSES: readonly NodeStatus[] = [
  'preparing',
  'cordoned',
  'draining',
  'upgrading',
  'verifying',
  'completed',
  'rolling-back',
  'rolled-back',
  'failed',
]

/**
 * The allowed transitions. Checked on every write, so a bug cannot skip a phase silently. Each phase's
 * handler (phases.ts) moves a node one step along it; a rerun picks a node up in the state it was
 * left in, so no state ever goes back to `cordoned` but a finished one (a new run).
 */
export const TRANSITIONS: Readonly<Record<NodeStatus, readonly NodeStatus[]>> = {
  preparing: ['cordoned', 'rolling-back'],
  cordoned: ['draining', 'upgrading', 'rolling-back'],
  draining: ['upgrading', 'rolling-back'],
  upgrading: ['verifying', 'rolling-back'],
  verifying: ['completed', 'rolling-back'],
  completed: ['cordoned', 'rolling-back'],
  'rolling-back': ['rolled-back', 'failed'],
  'rolled-back': ['cordoned', 'rolling-back'],
  failed: ['rolling-back'],
}

export function isNodeStatus(value: string | undefined): value is NodeStatus {
  return value !== undefined && (NODE_STATUSES as readonly string[]).includes(value)
}

/** Whether `from` → `to` is allowed. A node kata-lcm never touched may only start `cordoned` or `rolling-back`. */
export function canTransition(from: NodeStatus | undefined, to: NodeStatus): boolean {
  if (from === undefined) return to === 'cordoned' || to === 'rolling-back'
  return TRANSITIONS[from].includes(to)
}

/** The node's lifecycle status as recorded, or undefined when kata-lcm never wrote one (or it is foreign). */
export function readStatus(annotations: Record<string, string>): NodeStatus | undefined {
  const value = annotations[STATUS_ANNOTATION]
  return isNodeStatus(value) ? value : undefined
}

/** States in which a run was interrupted mid-flight (a rerun must finish or roll back the node). */
export function isInFlight(status: NodeStatus | undefined): boolean {
  return (
    status === 'preparing' ||
    status === 'cordoned' ||
    status === 'draining' ||
    status === 'upgrading' ||
    status === 'verifying' ||
    status === 'rolling-back'
  )
}
