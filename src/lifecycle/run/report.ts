import type { NodeStatus } from '../engine/node-state.js'

/** The first `max` names and how many more, for one-line messages: `a, b, c and 4 more`. Pure. */
export function listed(names: readonly string[], max = 5, separator = ', '): string {
  const more = names.length - max
  return names.slice(0, max).join(separator) + (more > 0 ? `${separator === ', ' ? '' : ';'} and ${more} more` : '')
}

/** What the verification pod showed, collected before it is deleted. */
export interface VerificationEvidence {
  pod: string
  phase: string
  containers: string[]
  events: string[]
  logTail: string[]
}

export interface NodeResult {
  name: string
  /** `gone`: the node was deleted during its wave; it is not upgraded and nothing was reverted. */
  status: NodeStatus | 'untouched' | 'skipped' | 'gone'
  /** The kata-deploy version the node runs now, as far as kata-lcm knows. */
  version?: string
  error?: string
  /** Why a `skipped` node was left alone when it is not already on the target (the skip label). */
  reason?: string
  evidence?: VerificationEvidence
  /** The Kata pods that did not come through the node's upgrade (`ns/pod restarted`, `... died`, `... vanished`). */
  disruptedWorkloads?: string[]
}

/**
 * `nodes-gone`: every wave ran, every remaining node is on the target, but nodes were deleted mid-run.
 * `workloads-disrupted`: with `onWorkloadDisruption: stop`, a wave's running Kata pods did not all
 * come through (the nodes are upgraded and verified); the run stopped before the next wave.
 * `held-by-alerts`: firing alerts (or an unanswered Prometheus) held a wave past the alert gate's
 * timeout; the run stopped before it, and a rerun goes on.
 */
export type Outcome =
  | 'success'
  | 'nothing-to-do'
  | 'planned'
  | 'rolled-back'
  | 'manual-action'
  | 'interrupted'
  | 'nodes-gone'
  | 'workloads-disrupted'
  | 'held-by-alerts'

/** One machine-readable report per command (--json prints it as is). */
export interface LifecycleReport {
  command: 'upgrade' | 'rollback'
  runId: string
  /** The fleet policy in effect (`ConfigMap kube-system/kata-lcm-policy`, `none (--no-policy)`, ...), as the first line said. */
  policy: string
  release: { name: string; namespace: string }
  mode: string
  fromVersion: string
  targetVersion: string
  dryRun: boolean
  outcome: Outcome
  waves: string[][]
  /** With pools: the pool of each wave. */
  wavePools?: string[]
  /**
   * The rollout's shape: a first (canary) wave smaller than the batch (of the run, or of each pool),
   * a soak after every wave but the last, the pools in order, the cap on unschedulable nodes.
   */
  rollout?: {
    batchSize: number
    canary?: number
    soakMs?: number
    pools?: { name: string; nodes: string[]; batchSize: number; canary?: number }[]
    maxUnavailable?: number
  }
  nodes: NodeResult[]
  /** The helm commands run (or, for --dry-run, that would run). */
  helmCommands: string[]
  /** True when nodes now run different versions (a run stopped part way). */
  mixedFleet: boolean
  summary: string
  nextSteps: string[]
}
