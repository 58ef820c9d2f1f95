import { InputError } from '../errors.js'

/**
 * The longest delay a Node.js timer honours: 2^31-1 ms (about 24.8 days). A longer one fires after
 * 1 ms with a TimeoutOverflowWarning, which would turn a wish for patience into an instant timeout.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The upper bound of every duration flag and template parameter: 24 hours. */
export const MAX_DURATION_MS = 24 * 3_600_000
export const MAX_DURATION_TEXT = '24h'

/** Nanoseconds per unit, as Go counts them: whole numbers, so `2m30.5s` sums without rounding errors. */
const NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3_600e9 }

/**
 * A duration as helm, kubectl and Argo write it (Go's time.ParseDuration: `1h30m`, `2m30s`, `1.5h`,
 * `300ms`), or a bare number of seconds. The one pattern: the parser, the policy's JSON schema and
 * the chart's values.schema.json use it (a unit test holds the chart to it).
 */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$'
const DURATION = new RegExp(DURATION_PATTERN)
const PART = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g

/**
 * Parses `90s`, `5m`, `1h30m`, `2m30s`, `1500ms` or a bare number of seconds into milliseconds,
 * between 1 ms and 24h; throws an InputError naming the flag (or field) otherwise. Pure.
 */
export function parseDuration(flag: string, text: string): number {
  const trimmed = text.trim()
  if (!DURATION.test(trimmed)) throw new InputError(flag, `"${text}" is not a duration; use e.g. 90s, 5m, 1h or 1h30m`)
  const ns = /^[0-9.]+$/.test(trimmed)
    ? Number(trimmed) * NS.s!
    : [...trimmed.matchAll(PART)].reduce((sum, [, n, unit]) => sum + Number(n) * NS[unit!]!, 0)
  const ms = ns / 1e6
  checkDuration(flag, ms, text)
  return ms
}

/** Throws an InputError naming `flag` unless `ms` is a duration kata-lcm accepts (0 < ms <= 24h). Pure. */
export function checkDuration(flag: string, ms: number, text = `${ms}ms`): void {
  if (!Number.isFinite(ms) || ms <= 0)
    throw new InputError(flag, `"${text}" must be longer than zero; use e.g. 90s, 5m or 1h`)
  if (ms > MAX_DURATION_MS)
    throw new InputError(
      flag,
      `"${text}" is longer than the ${MAX_DURATION_TEXT} kata-lcm allows; use at most ${MAX_DURATION_TEXT}`,
    )
}

/** `ms` as helm's --timeout takes it (whole seconds, at least 1s). Pure. */
export function helmDuration(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`
}

/** A delay any timer can take: `ms` clamped into [0, MAX_TIMER_MS]. Every timer in kata-lcm goes through it. Pure. */
export function timerMs(ms: number): number {
  return Number.isFinite(ms) ? Math.min(MAX_TIMER_MS, Math.max(0, ms)) : MAX_TIMER_MS
}
