/**
 * `status --watch` against the fakes: started before a run, it follows every wave through the
 * watches on the nodes and the run record (no list after the first), and ends with the run.
 */
import { describe, expect, it } from 'vitest'
import { PreconditionError } from '../../../src/lifecycle/errors.js'
import { watchStatus, type WatchSnapshot } from '../../../src/lifecycle/services/status-watch.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { countByState } from '../../../src/lifecycle/services/status.service.js'
import { formatWatchLine, formatWatchVerdict } from '../../../src/ui/report-format.js'
import { watchView } from '../../../src/ui/watch-view.js'
import { RELEASE, scenario } from '../../fakes/scenario.js'

const DAY = 24 * 3_600_000

/** Every state at 0. */
const scenarioCounts = (): WatchSnapshot['counts'] => countByState([])

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
    const lines = seen.map((snap) => formatWatchLine(snap, s.clock.now()))
    expect(lines[0]).toBe('no run in flight; nodes: 3 untouched')
    for (const wave of [1, 2, 3])
      expect(lines).toContainEqual(expect.stringMatching(`^run run-1 toward 3.29.0: wave ${wave}/3;`))
    // The policy the run was planned under, its elapsed time, and an ETA once a wave is done.
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^run run-1 toward 3\.29\.0: wave 2\/3; \d+s elapsed, ETA \d+s; policy \S.*; nodes: 1 upgrading, 1 completed, 1 untouched$/,
      ),
    )
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
    const counts = { ...verdict.snapshot.counts, completed: 1, untouched: 1 }
    const run = { runId: 'r', targetVersion: '3.29.0', startedAt: '2026-12-01T10:00:00Z' }
    expect(
      formatWatchLine(
        {
          run: { ...run, paused: { by: 'ops', at: '2026-12-01T10:00:00Z' } },
          wave: { current: 1, total: 4, done: 0 },
          counts,
          selected: 2,
        },
        new Date('2026-12-01T10:03:12Z'),
      ),
    ).toBe(
      'run r toward 3.29.0: wave 1/4, PAUSED by ops at 2026-12-01T10:00:00Z; 3m elapsed; nodes: 1 completed, 1 untouched',
    )
  })

  it('a line names the pool, a wait for the window, the policy, and an ETA from the waves done', () => {
    const counts = { ...scenarioCounts(), completed: 2, untouched: 6 }
    const line = formatWatchLine(
      {
        run: {
          runId: 'r',
          targetVersion: '3.29.0',
          startedAt: '2026-12-01T10:00:00Z',
          policy: 'ConfigMap kube-system/kata-lcm-policy',
          waitingForWindow: { wave: 2, opensAt: '2026-12-01T13:12:00Z' },
        },
        wave: { current: 1, total: 4, done: 1, pool: 'gpu' },
        counts,
        selected: 8,
      },
      new Date('2026-12-01T10:20:00Z'),
    )
    // 20 minutes for one wave of four: three more take an hour.
    expect(line).toBe(
      'run r toward 3.29.0: wave 1/4 (pool gpu), wave 2 waits for the maintenance window (opens in 2h52m); 20m elapsed, ETA 1h0m; policy ConfigMap kube-system/kata-lcm-policy; nodes: 2 completed, 6 untouched',
    )
  })

  it('on a terminal one line is redrawn in place; in CI a timestamped line per change', () => {
    const snapshot: WatchSnapshot = { counts: { ...scenarioCounts(), untouched: 1 }, selected: 1 }
    const at = () => new Date('2026-12-01T10:00:00Z')
    const written: string[] = []
    const ci = watchView({ write: (t: string) => written.push(t) }, at)
    ci.show(snapshot)
    ci.end('done')
    expect(written).toEqual([
      '2026-12-01T10:00:00.000Z no run in flight; nodes: 1 untouched\n',
      '2026-12-01T10:00:00.000Z done\n',
    ])
    written.length = 0
    const ci0 = process.env['CI']
    delete process.env['CI']
    try {
      const tty = watchView({ write: (t: string) => written.push(t), isTTY: true }, at)
      tty.show(snapshot)
      tty.show(snapshot)
      tty.end('done')
    } finally {
      if (ci0 !== undefined) process.env['CI'] = ci0
    }
    expect(written).toEqual([
      '\r\u001B[2Kno run in flight; nodes: 1 untouched',
      '\r\u001B[2Kno run in flight; nodes: 1 untouched',
      '\ndone\n',
    ])
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
