import type { LifecycleDeps, ReleaseRef } from '../context.js'
import type { MaintenanceWindow } from '../../ports/cluster.port.js'
import { describeWindow, untilText, windowState } from './window.js'

/**
 * Before a wave: when no maintenance window is open, waits until the next one opens (one timer to
 * that instant, the run's lease held meanwhile), with the wait recorded on the run record so
 * `kata-lcm status` shows it; `pause` and `resume` work as ever (the pause is honoured when the
 * window opens). Returns at once inside a window, or without windows; early when `signal` stops it.
 */
export async function waitForWindow(
  deps: LifecycleDeps,
  release: ReleaseRef,
  windows: readonly MaintenanceWindow[] | undefined,
  beforeWave: number,
  signal?: AbortSignal,
): Promise<void> {
  if (!windows || windows.length === 0) return
  let state = windowState(windows, deps.clock.now())
  const mark = (waiting: { wave: number; opensAt: string } | undefined) => markWindowWait(deps, release, waiting)
  // Open: a wait an Argo `step window` recorded before its suspend is over.
  if (state.open) return mark(undefined)
  while (!state.open && !signal?.aborted) {
    const now = deps.clock.now()
    deps.events.emit({ type: 'info', message: windowWaitMessage(windows, beforeWave, now, state.opensAt) })
    await mark({ wave: beforeWave, opensAt: state.opensAt.toISOString() })
    await deps.clock.sleep(state.opensAt.getTime() - now.getTime(), signal).catch(() => undefined)
    state = windowState(windows, deps.clock.now())
  }
  await mark(undefined)
  if (state.open)
    deps.events.emit({ type: 'info', message: `the maintenance window is open: wave ${beforeWave} starts` })
}

/**
 * Records on the run record that wave `waiting.wave` waits for a window opening at `waiting.opensAt`
 * (`status` shows it), or, with undefined, that nothing waits; writes only when that changes.
 */
export async function markWindowWait(
  deps: LifecycleDeps,
  release: ReleaseRef,
  waiting: { wave: number; opensAt: string } | undefined,
): Promise<void> {
  const record = await deps.cluster.readRun(release.namespace, release.name)
  if (!record || JSON.stringify(record.waitingForWindow) === JSON.stringify(waiting)) return
  const { waitingForWindow: _, ...rest } = record
  await deps.cluster.writeRun(waiting ? { ...rest, waitingForWindow: waiting } : rest)
}

/** `wave 2 waits for a maintenance window (...): it opens in 3h12m, at <ISO time>`. Pure. */
export function windowWaitMessage(
  windows: readonly MaintenanceWindow[],
  wave: number,
  now: Date,
  opensAt: Date,
): string {
  return `wave ${wave} waits for a maintenance window (${windows.map(describeWindow).join('; ')}): it opens in ${untilText(now, opensAt)}, at ${opensAt.toISOString()}`
}
