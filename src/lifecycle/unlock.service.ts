import type { LockInfo } from '../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from './context.js'
import { lockName } from './lock.js'
import { checkReleaseRef } from './names.js'

/**
 * `kata-lcm unlock`: breaks the single-runner lock (for a run that is gone for sure) and, with
 * `forgetRun`, drops the interrupted run's record. Node annotations are not touched. Idempotent.
 */
export async function unlock(
  deps: LifecycleDeps,
  release: ReleaseRef,
  forgetRun: boolean,
): Promise<{ removedLock?: LockInfo; forgotRun?: string }> {
  checkReleaseRef(release)
  const removedLock = await deps.cluster.unlock(release.namespace, lockName(release))
  let forgotRun: string | undefined
  if (forgetRun) {
    const record = await deps.cluster.readRun(release.namespace, release.name)
    if (record) {
      await deps.cluster.clearRun(release.namespace, release.name)
      forgotRun = record.runId
    }
  }
  return { ...(removedLock ? { removedLock } : {}), ...(forgotRun ? { forgotRun } : {}) }
}
