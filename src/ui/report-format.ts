import { stripVTControlCharacters } from 'node:util'
import YAML from 'yaml'
import type { LifecycleReport, NodeResult } from '../lifecycle/run/report.js'
import { STATUS_COUNT_KEYS, type StatusReport } from '../lifecycle/services/status.service.js'
import type { WatchSnapshot, WatchVerdict } from '../lifecycle/services/status-watch.service.js'
import { colors } from './colors.js'
import { durationText, untilText } from '../lifecycle/gates/window.js'

const STATUS_COLOR: Record<string, (text: string) => string> = {
  completed: colors.green,
  skipped: colors.green,
  'rolled-back': colors.yellow,
  failed: colors.red,
  gone: colors.yellow,
  untouched: colors.dim,
}

/** Left-aligned text table. Pure. */
export function table(header: string[], rows: string[][]): string[] {
  // Widths of what is visible: colour codes take no column.
  const width = (text: string) => stripVTControlCharacters(text).length
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => width(r[i] ?? ''))))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c + ' '.repeat(Math.max(0, widths[i]! - width(c))))
      .join('  ')
      .trimEnd()
  return [colors.bold(line(header)), ...rows.map(line)]
}

function nodeRow(n: NodeResult): string[] {
  const paint = STATUS_COLOR[n.status] ?? ((t: string) => t)
  const disrupted = n.disruptedWorkloads ? `Kata pods disrupted: ${n.disruptedWorkloads.join(', ')}` : undefined
  return [n.name, paint(n.status), n.version ?? '-', n.error ?? n.reason ?? disrupted ?? '']
}

/** The human report of an upgrade or rollback. Pure. */
export function formatLifecycleReport(report: LifecycleReport): string[] {
  const lines: string[] = []
  const title =
    report.command === 'rollback'
      ? `rollback of ${report.nodes.map((n) => n.name).join(', ')}`
      : `upgrade ${report.fromVersion} -> ${report.targetVersion}`
  lines.push(
    colors.bold(
      `kata-lcm ${title} (release ${report.release.namespace}/${report.release.name}, ${report.mode} mode, run ${report.runId})`,
    ),
    `policy: ${report.policy}`,
  )
  if (report.dryRun) {
    const { canary, soakMs, batchSize, pools, maxUnavailable } = report.rollout ?? {}
    const poolText = pools
      ? ` in ${pools.length} pool(s), in order: ${pools.map((p) => `${p.name} (${p.nodes.length} node(s), waves of ${p.batchSize})`).join(', ')}`
      : batchSize
        ? ` of ${batchSize}`
        : ''
    lines.push('', `plan: ${report.waves.length} wave(s)${poolText}`)
    if (maxUnavailable !== undefined)
      lines.push(`  at most ${maxUnavailable} selected node(s) unschedulable at once (--max-unavailable)`)
    report.waves.forEach((wave, i) => {
      const pool = report.wavePools?.[i]
      const firstOfPool = pool !== undefined && report.wavePools![i - 1] !== pool
      const isCanary = pool
        ? firstOfPool && pools?.find((p) => p.name === pool)?.canary !== undefined
        : i === 0 && canary !== undefined
      const tags = [...(pool ? [`pool ${pool}`] : []), ...(isCanary ? ['canary'] : [])]
      lines.push(`  wave ${i + 1}${tags.length > 0 ? ` (${tags.join(', ')})` : ''}: ${wave.join(', ')}`)
      if (soakMs && i < report.waves.length - 1)
        lines.push(`  soak ${Math.round(soakMs / 1000)}s in service, then re-check wave ${i + 1}'s nodes`)
    })
    lines.push('', 'helm command(s) that would run:', ...report.helmCommands.map((c) => `  ${c}`))
  }
  lines.push('', ...table(['NODE', 'STATUS', 'VERSION', 'ERROR'], report.nodes.map(nodeRow)))
  for (const n of report.nodes.filter((x) => x.evidence)) {
    const e = n.evidence!
    lines.push('', colors.bold(`verification evidence for ${n.name} (pod ${e.pod}, phase ${e.phase})`))
    lines.push(
      ...e.containers.map((c) => `  container ${c}`),
      ...e.events.map((ev) => `  event: ${ev}`),
      ...e.logTail.map((l) => `  log: ${l}`),
    )
  }
  const paint =
    report.outcome === 'success' || report.outcome === 'nothing-to-do' || report.outcome === 'planned'
      ? colors.green
      : ['rolled-back', 'nodes-gone', 'workloads-disrupted', 'held-by-alerts'].includes(report.outcome)
        ? colors.yellow
        : colors.red
  lines.push('', paint(report.summary))
  if (report.nextSteps.length > 0) lines.push('next:', ...report.nextSteps.map((s) => `  - ${s}`))
  return lines
}

/** `3.28.0 (newer than the release)`: which version the node's kata-deploy pod runs, and how it relates to the release. Pure. */
function podColumn(row: StatusReport['rows'][number]): string {
  if (!row.podVersion) return row.kataDeployPod
  const relation = row.podRelation && row.podRelation !== 'same as the release' ? `, ${row.podRelation}` : ''
  return `${row.podVersion} (${row.kataDeployPod === 'current' ? 'current revision' : "not the DaemonSet's revision"}${relation})`
}

/** The row's last error, and the Kata pods its last upgrade disrupted. Pure. */
function problem(row: StatusReport['rows'][number]): string {
  const disrupted = row.disruptedWorkloads ? `Kata pods disrupted by its upgrade: ${row.disruptedWorkloads}` : ''
  return [row.lastError, disrupted].filter(Boolean).join('; ')
}

/** `2 completed, 1 verifying, 3 untouched`: the states that hold a node, in lifecycle order. Pure. */
export function formatCounts(counts: StatusReport['counts']): string {
  return STATUS_COUNT_KEYS.filter((k) => counts[k] > 0)
    .map((k) => `${counts[k]} ${k}`)
    .join(', ')
}

/** The `kata-lcm status` table; `wide` adds the run, the previous version and when the phase started. Pure. */
export function formatStatus(report: StatusReport, options: { wide?: boolean } = {}): string[] {
  const head = `release ${report.release.namespace}/${report.release.name}${report.release.chartVersion ? ` (chart ${report.release.chartVersion}, ${report.release.status})` : report.release.helmProblem ? ` (helm could not be run: ${report.release.helmProblem})` : ' (not found)'}, nodes: ${report.selection}`
  const run = report.run
    ? [
        `run ${report.run.runId} toward ${report.run.targetVersion} in flight${report.run.paused ? `: PAUSED by ${report.run.paused.by} at ${report.run.paused.at} (kata-lcm resume lets its next wave start)` : ''}${windowWait(report.run.waitingForWindow)}${alertHold(report.run.heldByAlerts)}`,
      ]
    : []
  const wide = options.wide === true
  const header = wide
    ? ['NODE', 'STATUS', 'VERSION', 'PREVIOUS', 'CORDONED', 'KATA-DEPLOY POD', 'RUN', 'PHASE STARTED', 'LAST ERROR']
    : ['NODE', 'STATUS', 'VERSION', 'CORDONED', 'KATA-DEPLOY POD', 'LAST ERROR']
  const rows = report.rows.map((r) => {
    const cordoned = r.cordoned ? `yes (${r.cordonedBy})` : 'no'
    return wide
      ? [
          r.node,
          r.status,
          r.version,
          r.previousVersion ?? '-',
          cordoned,
          podColumn(r),
          r.runId ?? '-',
          r.phaseStartedAt ?? '-',
          problem(r),
        ]
      : [r.node, r.status, r.version, cordoned, podColumn(r), problem(r)]
  })
  return [head, ...run, `nodes: ${formatCounts(report.counts)}`, '', ...table(header, rows)]
}

/** kubectl's `-o`: the versioned report as JSON or YAML, or the table (`wide`: more columns). */
export type StatusOutput = 'json' | 'yaml' | 'wide'

/**
 * The report as `-o` asks: JSON and YAML are the same object (docs/status.md), the YAML quoted for
 * YAML 1.1 parsers too (a timestamp or `no` stays a string in any of them). Pure.
 */
export function renderStatus(report: StatusReport, output?: StatusOutput): string {
  switch (output) {
    case 'json':
      return JSON.stringify(report, null, 2)
    case 'yaml':
      return YAML.stringify(report, { version: '1.1' }).trimEnd()
    default:
      return formatStatus(report, { wide: output === 'wide' }).join('\n')
  }
}

/**
 * One line of `status --watch` at `now`: the run, its wave of the total (and pool), paused or
 * waiting for its window, the policy, elapsed time and an ETA from the waves done, the nodes per
 * state. Pure.
 */
export function formatWatchLine(snapshot: WatchSnapshot, now: Date): string {
  const { run, wave } = snapshot
  if (!run || !wave) return `no run in flight; nodes: ${formatCounts(snapshot.counts)}`
  const where =
    wave.current > 0
      ? `wave ${wave.current}/${wave.total}${wave.pool ? ` (pool ${wave.pool})` : ''}`
      : `0/${wave.total} waves started`
  const held = run.paused
    ? `, PAUSED by ${run.paused.by} at ${run.paused.at}`
    : run.waitingForWindow
      ? `, wave ${run.waitingForWindow.wave} waits for the maintenance window (opens in ${untilText(now, new Date(run.waitingForWindow.opensAt))})`
      : run.heldByAlerts
        ? `, wave ${run.heldByAlerts.wave} HELD by alerts for ${untilText(new Date(run.heldByAlerts.since), now)}`
        : ''
  const elapsedMs = Math.max(0, now.getTime() - new Date(run.startedAt).getTime())
  const eta =
    wave.done > 0 && wave.done < wave.total
      ? `, ETA ${durationText((elapsedMs / wave.done) * (wave.total - wave.done))}`
      : ''
  const policy = run.policy ? `; policy ${run.policy}` : ''
  return `run ${run.runId} toward ${run.targetVersion}: ${where}${held}; ${durationText(elapsedMs)} elapsed${eta}${policy}; nodes: ${formatCounts(snapshot.counts)}`
}

/** The last line of `status --watch`: how the run ended. Pure. */
export function formatWatchVerdict(verdict: WatchVerdict): string {
  const run = verdict.runId ? `run ${verdict.runId}` : 'the last run'
  switch (verdict.outcome) {
    case 'completed':
      return `${verdict.runId ? `${run} complete` : 'no run in flight'}: every selected node is completed (${verdict.snapshot.selected})`
    case 'rolled-back':
      return `${run} stopped: rolled back: ${verdict.nodes.join(', ')}`
    case 'manual-action':
      return `${run} stopped: FAILED, could not be rolled back (act by hand): ${verdict.nodes.join(', ')}`
  }
}

/** `: wave 2 is HELD by alerts since ...: 1 alert(s) firing: ...`, or nothing. */
function alertHold(hold: { wave: number; since: string; reason: string } | undefined): string {
  return hold ? `: wave ${hold.wave} is HELD by alerts since ${hold.since}: ${hold.reason}` : ''
}

/** `: wave 2 waits for the maintenance window, which opens in 3h12m (at ...)`, or nothing. */
function windowWait(waiting: { wave: number; opensAt: string } | undefined): string {
  if (!waiting) return ''
  return `: wave ${waiting.wave} waits for the maintenance window, which opens in ${untilText(new Date(), new Date(waiting.opensAt))} (at ${waiting.opensAt})`
}
