/**
 * The alert gate: before each wave, the alerts firing in the fleet's Prometheus that match the run's
 * matchers hold the run, like a pause, until they clear; a Prometheus that cannot be asked holds it
 * too (never waves through). The hold is named in progress and on the run record (`status` shows
 * it) and is bounded by the gate's timeout, which then stops the run cleanly (exit 3; a rerun goes
 * on). A soak ends into the next wave's gate, so alerts that fire while a wave soaks hold the run
 * before anything else is touched. Prometheus has no watch: the gate asks again every
 * ALERT_POLL_MS (its rules are evaluated every minute by default).
 */
import type { AlertGate, FiringAlert } from '../../ports/alerts.port.js'
import type { RunRecord } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { describeError, InputError, KataLcmError, ExitCode } from '../errors.js'
import { listed } from '../run/report.js'

export type { AlertGate } from '../../ports/alerts.port.js'

/** How often a held run asks Prometheus again in one process (the Argo template's backoff starts there and doubles up to 2 min). */
export const ALERT_POLL_MS = 15_000

export interface Matcher {
  name: string
  op: '=' | '!=' | '=~' | '!~'
  value: string
}

/**
 * `severity="critical",alertname=~"Kata.*"`: Prometheus' label matchers, comma-separated, values
 * quoted or not; a regex matches the whole value, as in PromQL. Empty: every firing alert. Pure.
 */
export function parseMatchers(field: string, text: string): Matcher[] {
  const matchers: Matcher[] = []
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(,|$)/y
  let at = 0
  while (at < text.trim().length) {
    pattern.lastIndex = at
    const m = pattern.exec(text.trim())
    if (!m)
      throw new InputError(
        field,
        `"${text}" is not a list of label matchers; write them as Prometheus does: severity="critical",alertname=~"Kata.*"`,
      )
    const raw = m[3]!.trim()
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw
    const op = m[2] as Matcher['op']
    if (op.endsWith('~')) {
      try {
        new RegExp(`^(?:${value})$`)
      } catch {
        throw new InputError(field, `${m[1]}${op}"${value}": the regular expression does not compile`)
      }
    }
    matchers.push({ name: m[1]!, op, value })
    at = pattern.lastIndex
  }
  return matchers
}

/** Whether an alert's labels match every matcher (a missing label is the empty value, as in PromQL). Pure. */
export function matches(labels: Record<string, string>, matchers: readonly Matcher[]): boolean {
  return matchers.every(({ name, op, value }) => {
    const actual = labels[name] ?? ''
    switch (op) {
      case '=':
        return actual === value
      case '!=':
        return actual !== value
      case '=~':
        return new RegExp(`^(?:${value})$`).test(actual)
      case '!~':
        return !new RegExp(`^(?:${value})$`).test(actual)
    }
  })
}

/** `KataNodeDown{node="a",severity="critical"}`: an alert as Prometheus prints it. Pure. */
function describeAlert(alert: FiringAlert): string {
  const { alertname, ...rest } = alert.labels
  const labels = Object.entries(rest)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v}"`)
  return `${alertname ?? 'alert'}{${labels.join(',')}}`
}

/** Whether the gate holds the run now, and why. Read-only; never throws for Prometheus' sake. */
export async function alertHold(deps: LifecycleDeps, gate: AlertGate): Promise<string | undefined> {
  if (!deps.alerts)
    throw new KataLcmError('this kata-lcm was built without an alerts client; the alert gate cannot be asked')
  let firing: FiringAlert[]
  try {
    firing = await deps.alerts.firing(gate.url)
  } catch (error) {
    return `Prometheus cannot be asked (${describeError(error)}); an unanswered gate holds`
  }
  const matched = firing.filter((a) => matches(a.labels, parseMatchers('alerts.match', gate.match)))
  return matched.length > 0
    ? `${matched.length} alert(s) firing${gate.match ? ` that match ${gate.match}` : ''}: ${listed(matched.map(describeAlert), 3)}`
    : undefined
}

/** The run stopped: alerts held a wave for longer than the gate's timeout. Exit 3: a rerun goes on. */
export class AlertHoldTimeoutError extends KataLcmError {
  override readonly code = 'HELD_BY_ALERTS'
  override readonly exitCode = ExitCode.RolledBack
}

export type AlertHoldRecord = { wave: number; since: string; reason: string }

/**
 * The gate's answer for wave `wave`, recorded: clear (the hold, if any, taken off the run record),
 * `held` (on the record, since when; `status` shows it), or, once held longer than the gate's
 * timeout, AlertHoldTimeoutError (the hold taken off). One question to Prometheus.
 */
export async function checkAlertGate(
  deps: LifecycleDeps,
  release: ReleaseRef,
  gate: AlertGate,
  wave: number,
  /** The run record when the caller just read it (an Argo step): not read again. */
  read?: RunRecord,
): Promise<{ held: false } | { held: true; reason: string; until: Date }> {
  const reason = await alertHold(deps, gate)
  const record = read ?? (await deps.cluster.readRun(release.namespace, release.name))
  const previous = record?.heldByAlerts?.wave === wave ? record.heldByAlerts : undefined
  if (reason === undefined) {
    if (previous)
      deps.events.emit({ type: 'info', message: `wave ${wave}: the alerts that held it cleared; it starts` })
    await markAlertHold(deps, record, undefined)
    return { held: false }
  }
  const now = deps.clock.now()
  const since = previous ? new Date(previous.since) : now
  const until = new Date(since.getTime() + gate.timeoutMs)
  if (now >= until) {
    await markAlertHold(deps, record, undefined)
    throw new AlertHoldTimeoutError(
      `wave ${wave} was held by alerts from ${since.toISOString()} for longer than the alert timeout: ${reason}`,
      { suggestions: ['once the alerts clear, rerun the same command: completed nodes are skipped'] },
    )
  }
  if (previous?.reason !== reason)
    deps.events.emit({
      type: 'warning',
      message: `wave ${wave} is held: ${reason}; it starts once the gate clears, or the run stops at ${until.toISOString()}`,
    })
  await markAlertHold(deps, record, { wave, since: since.toISOString(), reason })
  return { held: true, reason, until }
}

/**
 * Before a wave (one process, the CLI): asks the gate until it is clear, every ALERT_POLL_MS, the
 * run's lease held; throws AlertHoldTimeoutError past the gate's timeout. Returns at once without a
 * gate, and early when `signal` stops it.
 */
export async function waitForAlerts(
  deps: LifecycleDeps,
  release: ReleaseRef,
  gate: AlertGate | undefined,
  wave: number,
  signal?: AbortSignal,
): Promise<void> {
  if (!gate) return
  for (;;) {
    const check = await checkAlertGate(deps, release, gate, wave)
    if (!check.held || signal?.aborted) return
    const left = check.until.getTime() - deps.clock.now().getTime()
    await deps.clock.sleep(Math.max(1, Math.min(ALERT_POLL_MS, left)), signal).catch(() => undefined)
  }
}

/** Records (or, with undefined, takes off) the alert hold on the run record; writes only when it changes. */
async function markAlertHold(
  deps: LifecycleDeps,
  record: RunRecord | undefined,
  hold: AlertHoldRecord | undefined,
): Promise<void> {
  if (!record || JSON.stringify(record.heldByAlerts) === JSON.stringify(hold)) return
  const { heldByAlerts: _, ...rest } = record
  await deps.cluster.writeRun(hold ? { ...rest, heldByAlerts: hold } : rest)
}
