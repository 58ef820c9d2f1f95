/** What a run is asked to do: the flags (or the policy, or the Argo parameters) as the domain takes them. */
import type { MaintenanceWindow } from '../../ports/cluster.port.js'
import type { ReleaseRef } from '../context.js'
import type { DrainPolicy } from '../engine/drain.js'
import type { DeploymentMode } from '../modes/strategy.js'
import type { NodeSelection } from '../run/plan.js'
import type { PolicyInEffect } from '../policy/policy.js'
import type { Pool } from '../run/pools.js'
import type { OnDisruption } from '../engine/workloads.js'
import type { AlertGate } from '../../ports/alerts.port.js'

export type RequestedMode = 'auto' | DeploymentMode

export interface UpgradeRequest {
  targetVersion: string
  chart: string
  /** Chart reference that yields the release's current version, for rollback; defaults to `chart`. */
  previousChart?: string
  selection: NodeSelection
  /** Nodes per wave; with `batchPercent`, that share of the selected nodes instead. */
  batchSize: number
  batchPercent?: number
  /** The first wave's size (a canary smaller than the batch). */
  canary?: number
  /** After each wave but the last: wait this long, then re-check the wave's nodes before the next. */
  soakMs?: number
  /** Maintenance windows: a wave starts only inside one (window.ts). */
  windows?: MaintenanceWindow[]
  /** A node whose running Kata pods did not come through its upgrade: name them (default), or also stop the run. */
  onWorkloadDisruption?: OnDisruption
  /** The alert gate: matching firing alerts (or no answer from Prometheus) hold each wave (alerts.ts). */
  alerts?: AlertGate
  /** Named node pools within the selection, upgraded in this order (pools.ts). */
  pools?: Pool[]
  /** At most this many selected nodes unschedulable at once, counting those already cordoned. */
  maxUnavailable?: number
  drain: boolean
  drainTimeoutMs: number
  /** What a drain may evict beyond pods a controller recreates; default: nothing more (kubectl's rule). */
  drainPolicy?: DrainPolicy
  /** The run's verification pod; `source` is empty only when every pool brings its own. */
  verification: { source: string; origin: string; namespace: string; timeoutMs: number }
  readyTimeoutMs: number
  helmTimeout: string
  release: ReleaseRef
  deploymentMode: RequestedMode
  allowDowngrade: boolean
  dryRun: boolean
  /** Go ahead with a pod restart kata-deploy itself makes disruptive (3.28.0's cleanup), without --drain. */
  acceptRestartHazard?: boolean
  /** The fleet policy the request's defaults came from: named in the run's first line and its report. */
  policy: PolicyInEffect
}

/** What `kata-lcm rollback NODE` is asked to do. */
export interface RollbackRequest {
  node: string
  release: ReleaseRef
  chart: string
  /** Explicit version to go back to; otherwise the node's recorded previous version, else helm history. */
  toVersion?: string
  verification?: { source: string; origin: string; namespace: string; timeoutMs: number }
  /** The policy's pools: a node in a pool with its own verification pod is verified with that one. */
  pools?: { pools: Pool[]; namespace: string; timeoutMs: number }
  readyTimeoutMs: number
  helmTimeout: string
  /** The fleet policy the request's defaults came from: named in the run's first line and its report. */
  policy: PolicyInEffect
}
