import type { NodeView } from '../../ports/cluster.port.js'
import type { RunContext } from '../modes/strategy.js'
import { newWaveState, outcomes, runHandlers, type WaveSettings } from './phases.js'
import type { NodeResult } from '../run/report.js'

export type { WaveSettings } from './phases.js'

export interface WaveResult {
  passed: string[]
  rolledBack: string[]
  /** Nodes whose rollback failed: cordoned, annotated `failed`, manual action needed. */
  failed: string[]
  /** Nodes deleted during the wave: not upgraded, nothing to revert. */
  gone: string[]
  /** Upgraded nodes whose running Kata pods did not all come through (named on each node). */
  disrupted: string[]
  results: NodeResult[]
}

/**
 * One wave, as a unit, in one process: every handler of the wave's table in order (prepare → cordon
 * → (drain) → upgrade → verify → complete → rollback of the nodes that failed). The Argo steps run
 * the same handlers one step per pod.
 */
export async function runWave(
  ctx: RunContext,
  settings: WaveSettings,
  wave: number,
  waveNodes: NodeView[],
): Promise<WaveResult> {
  const state = newWaveState(ctx, settings, wave, waveNodes)
  await runHandlers(state)
  const { rolledBack, failed, gone, disrupted } = outcomes(state)
  const results = waveNodes.map((n) => state.results.get(n.name) ?? { name: n.name, status: 'untouched' as const })
  return {
    passed: results.filter((r) => r.status === 'completed').map((r) => r.name),
    rolledBack,
    failed,
    gone,
    disrupted,
    results,
  }
}
