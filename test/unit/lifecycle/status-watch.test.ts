/**
 * `status --watch` against the fakes: started before a run, it follows every wave through the
 * watches on the nodes and the run record (no list after the first), and ends with the run.
 */
import { describe, expect, it } from 'vitest'
import { PreconditionError } from '../../../src/lifecycle/errors.js'
import { watchStatus, type WatchSnapshot } from '../../../src/lifecycle/status-watch.service.js'
import { upgrade } from '../../../src/lifecycle/upgrade.service.js'
import { formatWatchLine, formatWatchVerdict } from '../../../src/ui/report-format.js'
import { RELEASE, scenario } from '../../fakes/scenario.js'

const DAY = 24 * 3_600_000

describe('status --watch', () => {
  it('started before a 3-wave run: a line per change, every wave seen, completed at the end', async () => {
    const s = await scenario({ nodes: 3 })
    const seen: WatchSnapshot[] = []
    const watching = watchStatus(s.deps, RELEASE, {}, (snap) => seen.push(snap), { timeoutMs: DAY })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1')
    expect(report.outcome).toBe('success')
    const verdict = await watching
    expect(verdict).toMatchObject({ outcome: 'completed', runId: 'run-1' })
    expect(verdict.snapshot.counts).toMatchObject({ completed: 3, untouched: 0 })
    const lines = seen.map(formatWatchLine)
    expect(lines[0]).toBe('no run in flight; nodes: 3 untouched')
    for (const wave of [1, 2, 3])
      expect(lines).toContainEqual(expect.stringMatching(`^run run-1 toward 3.29.0: wave ${wave}/3;`))
    expect(lines).toContainEqual('run run-1 toward 3.29.0: wave 2/3; nodes: 1 upgrading, 1 completed, 1 untouched')
    // One line per change: never the same line twice in a row.
    expect(lines.filter((l, i) => l === lines[i - 1])).toEqual([])
    expect(formatWatchVerdict(verdict)).toBe('run run-1 complete: every selected node is completed (3)')
  })

  it('a node rolled back: the watch ends non-zero once the wave has settled, naming it', async () => {
    const s = await scenario({ nodes: 3 })
    s.cluster.verification.set('node-2', 'fail')
    const seen: WatchSnapshot[] = []
    const watching = watchStatus(s.deps, RELEASE, {}, (snap) => seen.push(snap), { timeoutMs: DAY })
    expect((await upgrade(s.deps, s.upgradeRequest({ batchSize: 1 }), 'run-1')).outcome).toBe('rolled-back')
    const verdict = await watching
    expect(verdict).toMatchObject({ outcome: 'rolled-back', runId: 'run-1', nodes: ['node-2'] })
    expect(verdict.snapshot.counts).toMatchObject({ completed: 1, 'rolled-back': 1, untouched: 1 })
    expect(formatWatchVerdict(verdict)).toBe('run run-1 stopped: rolled back: node-2')
  })

  it('a rollback that fails is named as such (manual action)', async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.verification.set('node-1', 'fail')
    s.helm.failNextUpgrade({ message: 'UPGRADE FAILED: chart pull error', when: (r) => r.version === '3.28.0' })
    const watching = watchStatus(s.deps, RELEASE, {}, () => undefined, { timeoutMs: DAY })
    await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    expect(await watching).toMatchObject({ outcome: 'manual-action', nodes: ['node-1'] })
  })

  it('after the run: exits at once, 0 when every node completed; a run paused says so', async () => {
    const s = await scenario({ nodes: 2 })
    await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1')
    const verdict = await watchStatus(s.deps, RELEASE, {}, () => undefined, { timeoutMs: DAY })
    expect(verdict).toMatchObject({ outcome: 'completed' })
    expect(verdict).not.toHaveProperty('runId')
    expect(formatWatchVerdict(verdict)).toBe('no run in flight: every selected node is completed (2)')
    expect(
      formatWatchLine({
        run: { runId: 'r', targetVersion: '3.29.0', paused: { by: 'ops', at: '2026-12-01T10:00:00Z' } },
        wave: { current: 1, total: 4 },
        counts: { ...verdict.snapshot.counts, completed: 1, untouched: 1 },
        selected: 2,
      }),
    ).toBe('run r toward 3.29.0: wave 1/4, PAUSED by ops at 2026-12-01T10:00:00Z; nodes: 1 completed, 1 untouched')
  })

  it('no run comes: a TimeoutError at the deadline; a selection that matches nothing is refused', async () => {
    const s = await scenario({ nodes: 1 })
    await expect(watchStatus(s.deps, RELEASE, {}, () => undefined, { timeoutMs: 60_000 })).rejects.toThrow(
      /did not end within 60s/,
    )
    await expect(
      watchStatus(s.deps, RELEASE, { labelSelector: 'pool=none' }, () => undefined, { timeoutMs: DAY }),
    ).rejects.toBeInstanceOf(PreconditionError)
  })
})
