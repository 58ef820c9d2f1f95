import type { RunRecord, RunSettings } from '../../ports/cluster.port.js'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { Values } from '../settings/values.js'

/**
 * A new run's record, the one shape every driver keeps beside the release (the planner's, for
 * `upgrade` and the Argo `step plan`; `rollback NODE`'s one-node run): the release it moves, from
 * and to which version, the operator's own values, its waves and settings, and the install of the
 * release it belongs to. Pure.
 */
export function newRecord(run: {
  runId: string
  release: ReleaseInfo
  mode: string
  targetVersion: string
  previousVersion: string
  chart: string
  previousChart: string
  userValues: Values
  startedAt: string
  waves: string[][]
  wavePools?: string[] | undefined
  settings: RunSettings
  /** The fleet policy the run's settings came from. */
  policy: string
  releaseInstance: string | undefined
  holder?: string
}): RunRecord {
  return {
    runId: run.runId,
    release: run.release.name,
    namespace: run.release.namespace,
    mode: run.mode,
    targetVersion: run.targetVersion,
    previousVersion: run.previousVersion,
    previousRevision: run.release.revision,
    chart: run.chart,
    previousChart: run.previousChart,
    userValues: run.userValues,
    startedAt: run.startedAt,
    waves: run.waves,
    ...(run.wavePools ? { wavePools: run.wavePools } : {}),
    settings: run.settings,
    policy: run.policy,
    ...(run.holder ? { holder: run.holder } : {}),
    ...(run.releaseInstance ? { releaseInstance: run.releaseInstance } : {}),
  }
}
