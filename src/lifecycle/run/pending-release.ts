/**
 * A release left in a pending state by a helm process of an earlier attempt: the step pod Argo lost
 * (its helm died with it), or a kata-lcm killed with SIGKILL (its helm child runs on). helm refuses
 * every upgrade of a pending release ("another operation is in progress"), so before its own
 * upgrade kata-lcm waits for that helm to end; when helm's own timeout has passed and the revision
 * is still pending, no helm process can still own it, and kata-lcm takes the release out of the
 * pending state with `helm rollback --no-hooks` to the revision before it (no hook runs, no node is
 * touched), then upgrades as it would have.
 */
import type { HelmRevisionView } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { parseDuration } from '../settings/durations.js'
import { ManualActionError } from '../errors.js'

/** Beyond helm's --timeout: what a helm process may still take to write its verdict. */
const WRITE_GRACE_MS = 30_000

const isPending = (status: string) => status.startsWith('pending-')

/** Waits out, or clears, a pending revision of the release; returns at once when there is none. */
export async function settlePendingRelease(
  deps: LifecycleDeps,
  release: ReleaseRef,
  helmTimeout: string,
  signal?: AbortSignal,
): Promise<void> {
  // One read of helm's storage (no helm process on this hot path: it runs before every upgrade).
  const latest = (revisions: HelmRevisionView[]) => revisions.reduce((a, b) => (b.revision > a.revision ? b : a))
  const first = await deps.cluster.waitForHelmRevisions(
    release.namespace,
    release.name,
    (revisions) => ({ newest: revisions.length > 0 ? latest(revisions) : undefined }),
    60_000,
    signal,
  )
  const pending = first.done ? first.value.newest : undefined
  if (!pending || !isPending(pending.status)) return
  const graceMs = parseDuration('--helm-timeout', helmTimeout) + WRITE_GRACE_MS
  const since = pending.modifiedAt ? Date.parse(pending.modifiedAt) : deps.clock.now().getTime()
  const leftMs = Math.max(0, since + graceMs - deps.clock.now().getTime())
  deps.events.emit({
    type: 'info',
    message: `release ${release.name} revision ${pending.revision} is ${pending.status}: a helm command of an earlier attempt; waiting up to ${Math.ceil(leftMs / 1000)}s for it to end`,
  })
  const ended = await deps.cluster.waitForHelmRevisions(
    release.namespace,
    release.name,
    (revisions) => {
      const now = latest(revisions)
      return now.revision !== pending.revision || !isPending(now.status) ? now : undefined
    },
    leftMs,
    signal,
  )
  if (ended.done) return
  // No helm process can still own it: clear it without hooks, back to the revision before it.
  const history = await deps.helm.history(release.name, release.namespace)
  const before = history
    .filter((r) => r.revision < pending.revision && (r.status === 'deployed' || r.status === 'superseded'))
    .at(-1)
  if (!before)
    throw new ManualActionError(
      `release ${release.name} revision ${pending.revision} has been ${pending.status} past --helm-timeout, and no earlier revision was deployed to go back to`,
      { suggestions: [`inspect: helm history ${release.name} -n ${release.namespace}`] },
    )
  deps.events.emit({
    type: 'warning',
    message: `release ${release.name} revision ${pending.revision} stayed ${pending.status} past --helm-timeout (${helmTimeout}): the helm process that ran it is gone; rolling the release back to revision ${before.revision} without hooks (no node is touched), then upgrading again`,
  })
  await deps.helm.rollbackWithoutHooks(release.name, release.namespace, before.revision, helmTimeout)
}
