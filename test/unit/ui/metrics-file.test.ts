/**
 * `upgrade --metrics-file`: the textfile as a run writes it (events in, the report at the end).
 * Its parse by Prometheus' own parser is proven in the e2e (test/tools/promcheck).
 */
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import type { LifecycleEvent } from '../../../src/lifecycle/engine/events.js'
import type { LifecycleReport } from '../../../src/lifecycle/run/report.js'
import { exposition, MetricsFile } from '../../../src/ui/metrics-file.js'

const RUN = { runId: 'r-1', targetVersion: '3.28.0', release: { name: 'kata-deploy', namespace: 'kube-system' } }

async function file(): Promise<string> {
  return path.join(await mkdtemp(path.join(tmpdir(), 'kata-lcm-metrics-')), 'kata-lcm.prom')
}

/** The samples of `text` as `name{labels} value` lines (no comments). */
const samples = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))

describe('--metrics-file', () => {
  it('in progress, then ended: nodes per state, waves, their durations, the result, passed on to the progress', async () => {
    const out = await file()
    let now = 1_000_000
    const seen: LifecycleEvent[] = []
    const metrics = new MetricsFile(out, RUN, { emit: (e) => seen.push(e) }, () => now)
    expect(samples(await readFile(out, 'utf8'))).toContain('kata_lcm_run_in_progress 1')

    metrics.emit({ type: 'wave-start', wave: 1, waves: 2, nodes: ['a'], pool: 'gpu' })
    now += 2_000
    metrics.emit({ type: 'node-status', node: 'a', status: 'upgrading' })
    metrics.emit({ type: 'wave-end', wave: 1, passed: ['a'], rolledBack: [], failed: [] })
    let text = await readFile(out, 'utf8')
    expect(samples(text)).toEqual(
      expect.arrayContaining([
        'kata_lcm_run_in_progress 1',
        'kata_lcm_run_waves 2',
        'kata_lcm_run_waves_done 1',
        'kata_lcm_run_nodes{state="upgrading"} 1',
        'kata_lcm_run_start_timestamp_seconds 1000',
        'kata_lcm_run_last_progress_timestamp_seconds 1002',
        'kata_lcm_wave_duration_seconds{wave="1",pool="gpu"} 2',
      ]),
    )
    expect(text).not.toMatch(/kata_lcm_run_result/)
    expect(seen.map((e) => e.type)).toEqual(['wave-start', 'node-status', 'wave-end'])

    now += 3_000
    metrics.finish({
      outcome: 'rolled-back',
      fromVersion: '3.27.0',
      mode: 'daemonset',
      policy: 'none (--no-policy)',
      waves: [['a'], ['b']],
      nodes: [
        { name: 'a', status: 'completed' },
        { name: 'b', status: 'rolled-back' },
        { name: 'c', status: 'skipped' },
      ],
    } as unknown as LifecycleReport)
    text = await readFile(out, 'utf8')
    expect(samples(text)).toEqual(
      expect.arrayContaining([
        'kata_lcm_run_info{run_id="r-1",release="kube-system/kata-deploy",target_version="3.28.0",from_version="3.27.0",mode="daemonset",policy="none (--no-policy)"} 1',
        'kata_lcm_run_in_progress 0',
        'kata_lcm_run_nodes{state="completed"} 1',
        'kata_lcm_run_nodes{state="rolled-back"} 1',
        'kata_lcm_run_nodes{state="untouched"} 1',
        'kata_lcm_run_duration_seconds 5',
        'kata_lcm_run_result{outcome="rolled-back"} 1',
      ]),
    )
    // Every sample's family has its HELP and TYPE first.
    expect(text).toMatch(/^# HELP kata_lcm_run_info .+\n# TYPE kata_lcm_run_info gauge\n/)
  })

  it('node states that change by the hundred are written once a second, not once each', async () => {
    vi.useFakeTimers()
    try {
      const out = await file()
      const metrics = new MetricsFile(out, RUN, { emit: () => undefined })
      metrics.emit({ type: 'wave-start', wave: 1, waves: 1, nodes: ['a', 'b'] })
      metrics.emit({ type: 'node-status', node: 'a', status: 'upgrading' })
      metrics.emit({ type: 'node-status', node: 'b', status: 'upgrading' })
      expect(await readFile(out, 'utf8')).toContain('kata_lcm_run_nodes{state="upgrading"} 0')
      vi.advanceTimersByTime(1000)
      expect(await readFile(out, 'utf8')).toContain('kata_lcm_run_nodes{state="upgrading"} 2')
      metrics.fail()
      expect(await readFile(out, 'utf8')).toContain('kata_lcm_run_result{outcome="error"} 1')
    } finally {
      vi.useRealTimers()
    }
  })

  it('every metric the file can hold is in docs/metrics.md', async () => {
    const out = await file()
    const metrics = new MetricsFile(out, RUN, { emit: () => undefined })
    metrics.emit({ type: 'wave-start', wave: 1, waves: 1, nodes: ['a'] })
    metrics.emit({ type: 'wave-end', wave: 1, passed: ['a'], rolledBack: [], failed: [] })
    metrics.fail()
    const names = new Set(samples(await readFile(out, 'utf8')).map((l) => /^[a-z_]+/.exec(l)![0]))
    const doc = await readFile(path.resolve(import.meta.dirname, '../../../docs/metrics.md'), 'utf8')
    expect(names.size).toBe(10)
    for (const name of names) expect(doc).toContain(`| \`${name}\` |`)
  })

  it('label values are escaped as the text format wants them', () => {
    expect(
      exposition([{ name: 'm', help: 'h', type: 'gauge', samples: [{ labels: { l: 'a"b\\c\nd' }, value: 1 }] }]),
    ).toBe('# HELP m h\n# TYPE m gauge\nm{l="a\\"b\\\\c\\nd"} 1\n')
  })
})
