/**
 * `kata-lcm pause` / `resume`: a flag in the run record (the Secret beside the release) that a run in
 * flight honours between waves, whether the CLI or the Argo steps drive it: the next wave does not
 * start until `resume` clears it. The wave in progress always finishes; pausing never interrupts a
 * node mid-upgrade.
 */
import type { RunRecord } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { PreconditionError } from '../errors.js'
import { MAX_DURATION_MS } from '../settings/durations.js'
import { checkReleaseRef } from '../checks/names.js'

async function inFlight(deps: LifecycleDeps, release: ReleaseRef, verb: string): Promise<RunRecord> {
  checkReleaseRef(release)
  const record = await deps.cluster.readRun(release.namespace, release.name)
  if (!record)
    throw new PreconditionError(
      `no kata-lcm run is in flight for release ${release.namespace}/${release.name}: nothing to ${verb}`,
      { suggestions: ['kata-lcm status shows where the nodes stand'] },
    )
  return record
}

/** Marks the run paused (idempotent: an earlier pause is kept). Returns the pause in effect. */
export async function pauseRun(
  deps: LifecycleDeps,
  release: ReleaseRef,
  by: string,
): Promise<{ runId: string; paused: { by: string; at: string } }> {
  const record = await inFlight(deps, release, 'pause')
  if (record.paused) return { runId: record.runId, paused: record.paused }
  const paused = { by, at: deps.clock.now().toISOString() }
  await deps.cluster.writeRun({ ...record, paused })
  return { runId: record.runId, paused }
}

/** Clears the pause (idempotent). Returns whether the run was paused. */
export async function resumeRun(
  deps: LifecycleDeps,
  release: ReleaseRef,
): Promise<{ runId: string; wasPaused: boolean }> {
  const record = await inFlight(deps, release, 'resume')
  if (!record.paused) return { runId: record.runId, wasPaused: false }
  const { paused: _cleared, ...rest } = record
  await deps.cluster.writeRun(rest)
  return { runId: record.runId, wasPaused: true }
}

/**
 * Between waves: when the run is paused, waits (a watch on the record) until it is resumed, or the
 * record is gone, or `signal` stops the run. Returns at once when it is not paused. `known`: the
 * record as the caller just read it (not read again).
 */
export async function waitWhilePaused(
  deps: LifecycleDeps,
  release: ReleaseRef,
  beforeWave: number,
  signal?: AbortSignal,
  known?: RunRecord,
): Promise<void> {
  const record = known ?? (await deps.cluster.readRun(release.namespace, release.name))
  if (!record?.paused) return
  deps.events.emit({
    type: 'info',
    message: `paused by ${record.paused.by} at ${record.paused.at}: wave ${beforeWave} waits for kata-lcm resume`,
  })
  const resumed = await deps.cluster.waitForRun(
    release.namespace,
    release.name,
    (now) => (now?.paused ? undefined : true),
    MAX_DURATION_MS,
    signal,
  )
  if (resumed.done) deps.events.emit({ type: 'info', message: `resumed: wave ${beforeWave} starts` })
}
