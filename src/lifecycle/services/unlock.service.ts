import type { LockInfo } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { lockName } from '../run/lock.js'
import { checkReleaseRef } from '../checks/names.js'

/**
 * `kata-lcm unlock`: breaks the single-runner lock (for a run that is gone for sure) and, with
 * `forgetRun`, drops the interrupted run's record, handing back the operator's own values it kept
 * (the release may still carry kata-lcm's overrides: they are the operator's to put back). Node
 * annotations are not touched. Idempotent.
 */
export async function unlock(
  deps: LifecycleDeps,
  release: ReleaseRef,
  forgetRun: boolean,
): Promise<{ removedLock?: LockInfo; forgotRun?: string; operatorValues?: Record<string, unknown> }> {
  checkReleaseRef(release)
  const removedLock = await deps.cluster.unlock(release.namespace, lockName(release))
  if (!forgetRun) return removedLock ? { removedLock } : {}
  const record = await deps.cluster.readRun(release.namespace, release.name)
  if (record) await deps.cluster.clearRun(release.namespace, release.name)
  return {
    ...(removedLock ? { removedLock } : {}),
    ...(record ? { forgotRun: record.runId, operatorValues: record.userValues } : {}),
  }
}
