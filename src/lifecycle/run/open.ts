import type { RunRecord } from '../../ports/cluster.port.js'
import type { LifecycleDeps } from '../context.js'
import { waveSettings, type WaveSettings } from '../engine/phases.js'
import { parseVerificationTemplate } from '../engine/verification.js'
import { strategyOfRecord } from '../modes/index.js'
import type { RunContext } from '../modes/strategy.js'

/** A run opened from its record: what every wave of it works with. */
export interface OpenRun {
  record: RunRecord
  /** The context the strategies and handlers work in. */
  ctx: RunContext
  /** Wave `wave`'s settings: the recorded ones, with its pool's verification pod when it has one. */
  settings(wave: number): WaveSettings
}

/**
 * Opens a run from its record, the one way: `kata-lcm upgrade` once the planner's record is
 * written, and every Argo step from the record the plan step wrote. The record is the run; nothing
 * of the request reaches the waves but through it. `runId` is the id the waves write on the nodes:
 * the CLI's own attempt when it resumes an interrupted run, else the record's. Pure (the record's
 * mode is checked).
 */
export function openRun(deps: LifecycleDeps, record: RunRecord, runId = record.runId): OpenRun {
  const s = record.settings
  const ctx: RunContext = {
    deps,
    release: { name: record.release, namespace: record.namespace },
    strategy: strategyOfRecord(record.mode),
    chart: record.chart,
    previousChart: record.previousChart,
    targetVersion: record.targetVersion,
    previousVersion: record.previousVersion,
    userValues: record.userValues,
    batchSize: s.batchSize,
    readyTimeoutMs: s.readyTimeoutMs,
    helmTimeout: s.helmTimeout,
    helmCommands: [],
    ...(record.releaseInstance ? { releaseInstance: record.releaseInstance } : {}),
  }
  const template = s.verification.source
    ? parseVerificationTemplate(s.verification.source, s.verification.origin)
    : undefined
  return {
    record,
    ctx,
    settings: (wave) =>
      waveSettings(runId, s, template, { waves: record.waves.length, pool: record.wavePools?.[wave - 1] }),
  }
}
