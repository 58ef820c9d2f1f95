import type { LifecycleDeps, ReleaseRef } from './context.js'
import type { MaintenanceWindow } from '../ports/cluster.port.js'
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
  if (state.open) return
  const mark = async (waiting: { wave: number; opensAt: string } | undefined) => {
    const record = await deps.cluster.readRun(release.namespace, release.name)
    if (!record) return
    const { waitingForWindow: _, ...rest } = record
    await deps.cluster.writeRun(waiting ? { ...rest, waitingForWindow: waiting } : rest)
  }
  while (!state.open && !signal?.aborted) {
    const now = deps.clock.now()
    deps.events.emit({
      type: 'info',
      message: `wave ${beforeWave} waits for a maintenance window (${windows.map(describeWindow).join('; ')}): it opens in ${untilText(now, state.opensAt)}, at ${state.opensAt.toISOString()}`,
    })
    await mark({ wave: beforeWave, opensAt: state.opensAt.toISOString() })
    await deps.clock.sleep(state.opensAt.getTime() - now.getTime(), signal).catch(() => undefined)
    state = windowState(windows, deps.clock.now())
  }
  await mark(undefined)
  if (state.open)
    deps.events.emit({ type: 'info', message: `the maintenance window is open: wave ${beforeWave} starts` })
}
