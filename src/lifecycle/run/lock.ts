import type { LockInfo } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { LockedError } from '../errors.js'

export const LOCK_TTL_SECONDS = 60

/** The Lease that makes kata-lcm a single runner per release. */
export function lockName(release: ReleaseRef): string {
  return `kata-lcm-${release.name}`.slice(0, 63)
}

export interface HeldLock {
  /** Stops renewing and releases the lease. Idempotent. */
  release(): Promise<void>
  /**
   * Stops renewing and leaves the lease to its holder: an Argo step hands it to the workflow's next
   * step (same holder), which takes it again; if none comes, it expires within the TTL. Idempotent.
   */
  keep(): Promise<void>
  /** Set when renewal found the lease taken by someone else. */
  lost: () => boolean
}

function age(info: LockInfo, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(info.acquiredAt)) / 1000))
  return seconds < 120 ? `${seconds}s` : `${Math.round(seconds / 60)}m`
}

/**
 * Takes the single-runner lock before the first write and renews it every TTL/3 while the holder
 * works (a CLI run, or one Argo step however long it takes). A second holder is refused with the
 * holder and its age; a lease not renewed for the TTL (its holder died) is taken over.
 */
export async function acquireLock(deps: LifecycleDeps, release: ReleaseRef, holder: string): Promise<HeldLock> {
  const name = lockName(release)
  const attempt = await deps.cluster.tryLock(release.namespace, name, holder, LOCK_TTL_SECONDS, deps.clock.now())
  if (!attempt.acquired) {
    const now = deps.clock.now()
    throw new LockedError(
      `another kata-lcm run holds the lock ${release.namespace}/${name}: ${attempt.current.holder}, started ${age(attempt.current, now)} ago, last renewed ${age({ ...attempt.current, acquiredAt: attempt.current.renewedAt }, now)} ago`,
      {
        suggestions: [
          `wait for it to finish; a lock not renewed for ${LOCK_TTL_SECONDS}s expires and is taken over`,
          `if that run is gone for sure: kata-lcm unlock --helm-release ${release.name} --helm-namespace ${release.namespace}`,
        ],
      },
    )
  }
  const stop = new AbortController()
  let lost = false
  const renew = async () => {
    while (!stop.signal.aborted) {
      await deps.clock.sleep((LOCK_TTL_SECONDS * 1000) / 3, stop.signal).catch(() => undefined)
      if (stop.signal.aborted) return
      const ok = await deps.cluster.renewLock(release.namespace, name, holder, deps.clock.now()).catch(() => true)
      if (!ok) {
        lost = true
        deps.events.emit({ type: 'warning', message: `lost the lock ${name} to another run; stopping after this wave` })
        return
      }
    }
  }
  const renewing = renew()
  let done = false
  const finish = async (unlock: boolean) => {
    if (done) return
    done = true
    stop.abort()
    await renewing
    if (lost) return
    if (unlock) await deps.cluster.unlock(release.namespace, name, holder).catch(() => undefined)
    else await deps.cluster.handOverLock(release.namespace, name, holder, deps.clock.now()).catch(() => undefined)
  }
  return { lost: () => lost, release: () => finish(true), keep: () => finish(false) }
}
