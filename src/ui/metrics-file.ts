/**
 * `upgrade --metrics-file FILE.prom`: the run as Prometheus metrics in node_exporter's textfile
 * format (its textfile collector reads `*.prom` from `--collector.textfile.directory`). The file is
 * rewritten whole (a temporary file renamed over it, so the collector never reads half a file) at
 * the run's start, at each wave's start and end, at most once a second while nodes change state, and
 * at the end. Names and an example alert: docs/metrics.md.
 */
import { constants, renameSync, writeFileSync } from 'node:fs'
import { access } from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../lifecycle/errors.js'
import type { LifecycleEvent } from '../lifecycle/engine/events.js'
import { STATUS_COUNT_KEYS, type StatusCountKey } from '../lifecycle/services/status.service.js'
import type { LifecycleReport } from '../lifecycle/run/report.js'
import type { EventSink } from '../ports/events.port.js'

/** Node states as the metrics count them (`untouched` is a node the run has not reached). */
const STATES: readonly StatusCountKey[] = STATUS_COUNT_KEYS

interface Metric {
  name: string
  help: string
  type: 'gauge' | 'counter'
  samples: { labels?: Record<string, string>; value: number }[]
}

/** `\`, `"` and newlines escaped as the text format wants a label value. Pure. */
function labelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** The text exposition format (version 0.0.4) of `metrics`. Pure. */
export function exposition(metrics: readonly Metric[]): string {
  const lines: string[] = []
  for (const m of metrics) {
    if (m.samples.length === 0) continue
    lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`)
    for (const s of m.samples) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => `${k}="${labelValue(v)}"`)
        .join(',')
      lines.push(`${m.name}${labels ? `{${labels}}` : ''} ${Number.isFinite(s.value) ? s.value : 0}`)
    }
  }
  return `${lines.join('\n')}\n`
}

const seconds = (ms: number) => Math.round(ms) / 1000

/**
 * `--metrics-file`: a `.prom` file (the only files node_exporter's collector reads) in a directory
 * that exists and can be written. Throws InputError naming the flag. Writes nothing.
 */
export async function checkMetricsFile(file: string): Promise<void> {
  if (!file.endsWith('.prom'))
    throw new InputError(
      '--metrics-file',
      `${file} must end in .prom (node_exporter's textfile collector reads only *.prom)`,
    )
  const dir = path.dirname(path.resolve(file))
  await access(dir, constants.W_OK).catch((error: NodeJS.ErrnoException) => {
    throw new InputError('--metrics-file', `its directory ${dir} cannot be written: ${error.code ?? error.message}`)
  })
}

/** An EventSink that passes every event on to `next` and keeps FILE's metrics up to date. */
export class MetricsFile implements EventSink {
  private readonly startedMs: number
  private lastProgressMs: number
  private readonly status = new Map<string, StatusCountKey>()
  private waves = 0
  private readonly waveStarted = new Map<number, number>()
  private readonly waveSeconds = new Map<number, { pool?: string; seconds: number }>()
  private readonly pools = new Map<number, string>()
  private ended: { outcome: string; report?: LifecycleReport } | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly file: string,
    private readonly run: { runId: string; targetVersion: string; release: { name: string; namespace: string } },
    private readonly next: EventSink,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.startedMs = now()
    this.lastProgressMs = this.startedMs
    this.write()
  }

  emit(event: LifecycleEvent): void {
    this.next.emit(event)
    switch (event.type) {
      case 'wave-start':
        this.waves = event.waves
        this.waveStarted.set(event.wave, this.now())
        if (event.pool) this.pools.set(event.wave, event.pool)
        for (const node of event.nodes) if (!this.status.has(node)) this.status.set(node, 'untouched')
        return this.progressed(true)
      case 'wave-end': {
        const started = this.waveStarted.get(event.wave) ?? this.startedMs
        const pool = this.pools.get(event.wave)
        this.waveSeconds.set(event.wave, { ...(pool ? { pool } : {}), seconds: seconds(this.now() - started) })
        return this.progressed(true)
      }
      case 'node-status':
        this.status.set(event.node, event.status)
        return this.progressed(false)
      default:
        return
    }
  }

  /** The run ended with `report`: the last write, the result and duration in, in-progress 0. */
  finish(report: LifecycleReport): void {
    this.ended = { outcome: report.outcome, report }
    clearTimeout(this.timer)
    this.timer = undefined
    this.write()
  }

  /** The command failed before a report (a refused precondition, the cluster): outcome `error`. */
  fail(): void {
    this.ended = { outcome: 'error' }
    clearTimeout(this.timer)
    this.timer = undefined
    this.write()
  }

  private progressed(now: boolean): void {
    this.lastProgressMs = this.now()
    if (now) {
      clearTimeout(this.timer)
      this.timer = undefined
      return this.write()
    }
    // Node states change by the hundred in a large wave: one write a second carries them all.
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      this.write()
    }, 1000)
    this.timer.unref()
  }

  private write(): void {
    const tmp = `${this.file}.${process.pid}.tmp`
    writeFileSync(tmp, exposition(this.metrics()))
    renameSync(tmp, this.file)
  }

  private metrics(): Metric[] {
    const ended = this.ended
    const r = ended?.report
    const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<StatusCountKey, number>
    if (r) for (const n of r.nodes) counts[n.status === 'skipped' || n.status === 'gone' ? 'untouched' : n.status]++
    else for (const s of this.status.values()) counts[s]++
    const done = [...this.waveSeconds.keys()].length
    const info = {
      run_id: this.run.runId,
      release: `${this.run.release.namespace}/${this.run.release.name}`,
      target_version: this.run.targetVersion,
      ...(r ? { from_version: r.fromVersion, mode: r.mode, policy: r.policy } : {}),
    }
    return [
      {
        name: 'kata_lcm_run_info',
        help: 'The run this file describes (always 1).',
        type: 'gauge',
        samples: [{ labels: info, value: 1 }],
      },
      {
        name: 'kata_lcm_run_in_progress',
        help: '1 while the run goes on, 0 once it ended.',
        type: 'gauge',
        samples: [{ value: ended ? 0 : 1 }],
      },
      {
        name: 'kata_lcm_run_start_timestamp_seconds',
        help: 'When the run started (Unix time).',
        type: 'gauge',
        samples: [{ value: seconds(this.startedMs) }],
      },
      {
        name: 'kata_lcm_run_last_progress_timestamp_seconds',
        help: 'When a node of the run last changed state or a wave started or ended (Unix time).',
        type: 'gauge',
        samples: [{ value: seconds(this.lastProgressMs) }],
      },
      {
        name: 'kata_lcm_run_waves',
        help: 'The waves the run planned.',
        type: 'gauge',
        samples: [{ value: r ? r.waves.length : this.waves }],
      },
      { name: 'kata_lcm_run_waves_done', help: 'The waves that ended.', type: 'gauge', samples: [{ value: done }] },
      {
        name: 'kata_lcm_run_nodes',
        help: "The run's nodes per lifecycle state (untouched: not reached, skipped or gone).",
        type: 'gauge',
        samples: STATES.map((state) => ({ labels: { state }, value: counts[state] })),
      },
      {
        name: 'kata_lcm_wave_duration_seconds',
        help: 'How long each wave that ended took.',
        type: 'gauge',
        samples: [...this.waveSeconds].map(([wave, w]) => ({
          labels: { wave: String(wave), ...(w.pool ? { pool: w.pool } : {}) },
          value: w.seconds,
        })),
      },
      {
        name: 'kata_lcm_run_duration_seconds',
        help: 'How long the run took (once it ended).',
        type: 'gauge',
        samples: ended ? [{ value: seconds(this.now() - this.startedMs) }] : [],
      },
      {
        name: 'kata_lcm_run_result',
        help: "The run's outcome (once it ended; error: the command failed before a report), 1 on its series.",
        type: 'gauge',
        samples: ended ? [{ labels: { outcome: ended.outcome }, value: 1 }] : [],
      },
    ]
  }
}
