import type { NodePatch, NodeView } from '../../ports/cluster.port.js'
import type { LifecycleDeps } from '../context.js'
import { KataLcmError } from '../errors.js'
import { Annotation, canTransition, readStatus, type NodeStatus } from './node-state.js'

/** Event reasons shown by `kubectl describe node`, one per status (those in QUIET are not recorded). */
const EVENT_REASON: Record<NodeStatus, string> = {
  preparing: 'KataUpgradePreparing',
  cordoned: 'KataUpgradeCordoned',
  draining: 'KataUpgradeDraining',
  upgrading: 'KataUpgradeUpgrading',
  verifying: 'KataUpgradeVerifying',
  completed: 'KataUpgradeCompleted',
  'rolling-back': 'KataUpgradeRollingBack',
  'rolled-back': 'KataUpgradeRolledBack',
  failed: 'KataUpgradeFailed',
}

/**
 * The routine steps between the cordon and the verdict: in the status annotation and the progress,
 * but no Event each (an Event is one more request per node; the story in `kubectl describe node`
 * is the start, the cordon, the drain, the verdict and every rollback step).
 */
const QUIET: ReadonlySet<NodeStatus> = new Set(['upgrading', 'verifying'])

export interface TransitionExtras {
  /** Further annotations to set in the same patch (null removes). */
  annotations?: Record<string, string | null>
  unschedulable?: boolean
  message: string
  warning?: boolean
}

/**
 * Moves a node to `to`: one merge patch (status, phase time, extras), then an Event. Refuses a
 * transition the table does not allow. Idempotent: re-entering the same state rewrites the same keys.
 */
export async function transition(
  deps: LifecycleDeps,
  node: NodeView,
  to: NodeStatus,
  extras: TransitionExtras,
): Promise<NodeView> {
  const from = readStatus(node.annotations)
  if (from !== to && !canTransition(from, to)) {
    throw new KataLcmError(
      `node ${node.name}: refusing status ${from ?? '(none)'} -> ${to}; the node's annotations were changed outside this run`,
      {
        suggestions: [`inspect it with: kubectl describe node ${node.name}`],
      },
    )
  }
  const patch: NodePatch = {
    annotations: {
      ...extras.annotations,
      [Annotation.status]: to,
      [Annotation.phaseStartedAt]: deps.clock.now().toISOString(),
    },
  }
  if (extras.unschedulable !== undefined) patch.unschedulable = extras.unschedulable
  const updated = await deps.cluster.patchNode(node.name, patch)
  deps.events.emit({ type: 'node-status', node: node.name, status: to, message: extras.message })
  // The Event is the story for `kubectl describe node`, not part of the state: it is not waited for
  // (recordNodeEvent never throws), so each phase costs one round of requests, not two.
  if (QUIET.has(to) && !extras.warning) return updated
  void deps.cluster.recordNodeEvent(updated, {
    reason: EVENT_REASON[to],
    message: extras.message,
    type: extras.warning ? 'Warning' : 'Normal',
  })
  return updated
}

/** Whether kata-lcm cordoned this node (so it may, and must, uncordon it). */
export function cordonedByUs(node: NodeView): boolean {
  return node.annotations[Annotation.cordonedByUs] === 'true'
}

/**
 * The patch fields that put a node back in service: uncordon only if kata-lcm cordoned it; a node
 * an operator cordoned stays cordoned.
 */
export function releaseCordon(
  node: NodeView,
): Pick<TransitionExtras, 'unschedulable'> & { annotations: Record<string, null> } {
  return cordonedByUs(node)
    ? { unschedulable: false, annotations: { [Annotation.cordonedByUs]: null } }
    : { annotations: { [Annotation.cordonedByUs]: null } }
}
