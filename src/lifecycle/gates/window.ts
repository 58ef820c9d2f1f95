/**
 * Maintenance windows: a wave starts only inside one (a wave in progress always finishes). Each
 * window is days of the week, a start and an end in local wall-clock time, and an IANA time zone,
 * as rancher's system-upgrade-controller and kured take them. A window whose end is not after its
 * start crosses midnight: it runs from the start on each listed day to the end on the next.
 *
 * Wall-clock times are read in the window's own zone through Intl, so daylight saving time is the
 * zone's: a start that does not exist that day (the spring-forward gap) opens the window at the
 * first instant after it; one that exists twice (fall-back) opens it at the first. Pure throughout.
 */
import type { MaintenanceWindow } from '../../ports/cluster.port.js'
import { InputError } from '../errors.js'

export type { MaintenanceWindow } from '../../ports/cluster.port.js'

export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const
export type Weekday = (typeof WEEKDAYS)[number]

const CLOCK = /^([01][0-9]|2[0-3]):([0-5][0-9])$/

/** Minutes after local midnight of `HH:MM`. */
function minutesOf(text: string): number {
  const m = CLOCK.exec(text)!
  return Number(m[1]) * 60 + Number(m[2])
}

/**
 * Checks one window as given in `field` (a flag or a policy path) and returns it normalized; throws
 * an InputError naming the field and what would be right. `Mon-Fri` and `Mon..Fri` ranges are
 * accepted in `days`.
 */
export function parseWindow(
  field: string,
  raw: { days?: unknown; start?: unknown; end?: unknown; timeZone?: unknown },
): MaintenanceWindow {
  const timeZone = raw.timeZone === undefined ? 'UTC' : String(raw.timeZone)
  if (!isTimeZone(timeZone))
    throw new InputError(field, `time zone "${timeZone}" does not exist; use an IANA name such as Europe/Berlin or UTC`)
  for (const key of ['start', 'end'] as const) {
    if (typeof raw[key] !== 'string' || !CLOCK.test(raw[key]))
      throw new InputError(field, `${key} "${String(raw[key])}" is not a time of day; use HH:MM, 24-hour (e.g. 02:00)`)
  }
  if (raw.start === raw.end)
    throw new InputError(field, `start and end are both ${String(raw.start)}: a window must last at least a minute`)
  const days = raw.days === undefined ? [] : Array.isArray(raw.days) ? raw.days.map(String) : [String(raw.days)]
  return { days: days.flatMap((d) => dayRange(field, d)), start: raw.start as string, end: raw.end as string, timeZone }
}

/**
 * `--window "Mon-Fri 02:00-05:00 Europe/Berlin"`: days (optional, comma-separated or a range), the
 * local times, and the zone (optional, UTC). Throws an InputError naming `flag`.
 */
export function parseWindowFlag(flag: string, text: string): MaintenanceWindow {
  const parts = text.trim().split(/\s+/)
  const times = parts.findIndex((p) => /^\d{1,2}:\d{2}-\d{1,2}:\d{2}$/.test(p))
  if (times < 0 || times > 1 || parts.length > times + 2)
    throw new InputError(
      flag,
      `"${text}" is not a window; use e.g. "Mon-Fri 02:00-05:00 Europe/Berlin" or "22:00-04:00"`,
    )
  const [start, end] = parts[times]!.split('-') as [string, string]
  return parseWindow(flag, {
    ...(times === 1 ? { days: parts[0]!.split(',') } : {}),
    start: start.padStart(5, '0'),
    end: end.padStart(5, '0'),
    ...(parts[times + 1] ? { timeZone: parts[times + 1] } : {}),
  })
}

function dayRange(field: string, text: string): Weekday[] {
  const index = (d: string) => {
    const i = WEEKDAYS.findIndex((w) => w.toLowerCase() === d.trim().slice(0, 3).toLowerCase())
    if (i < 0 || d.trim().length < 3)
      throw new InputError(field, `"${d}" is not a day of the week; use Mon, Tue, ... Sun, or a range such as Mon-Fri`)
    return i
  }
  const range = /^(\w+)\s*(?:-|\.\.)\s*(\w+)$/.exec(text.trim())
  if (!range) return [WEEKDAYS[index(text)]!]
  const [from, to] = [index(range[1]!), index(range[2]!)]
  const out: Weekday[] = []
  for (let i = from; ; i = (i + 1) % 7) {
    out.push(WEEKDAYS[i]!)
    if (i === to) return out
  }
}

/** Whether `zone` is a time zone this runtime knows (the IANA database Node.js ships). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

interface Local {
  /** Days since 1970-01-01 of the local date. */
  day: number
  weekday: number
  minutes: number
}

const formatters = new Map<string, Intl.DateTimeFormat>()

/** The wall clock in `zone` at `at`. */
function localAt(at: Date, zone: string): Local {
  let format = formatters.get(zone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    })
    formatters.set(zone, format)
  }
  const part = (type: string) => Number(format.formatToParts(at).find((p) => p.type === type)!.value)
  const day = Math.floor(Date.UTC(part('year'), part('month') - 1, part('day')) / 86_400_000)
  return { day, weekday: (day + 4) % 7, minutes: part('hour') * 60 + part('minute') }
}

/**
 * The first instant at or after local (`day`, `minutes`) in `zone`: the wall-clock time itself, or,
 * when it does not exist (a spring-forward gap), the first minute after the gap. When it exists
 * twice (fall-back), the first of the two.
 */
function instantOf(day: number, minutes: number, zone: string): Date {
  const wanted = day * 1440 + minutes
  // Start from the wall clock read as UTC, then correct by the zone's offset (twice: the offset at
  // the guess may differ from the offset at the answer).
  let guess = wanted * 60_000
  for (let i = 0; i < 3; i++) {
    const local = localAt(new Date(guess), zone)
    const diff = wanted - (local.day * 1440 + local.minutes)
    if (diff === 0) break
    guess += diff * 60_000
  }
  // The earliest instant whose wall clock is at or past the wanted one (an hour back at most covers
  // both a gap and a repeated hour).
  let at = guess - 3_600_000
  while (at <= guess + 3_600_000) {
    const local = localAt(new Date(at), zone)
    if (local.day * 1440 + local.minutes >= wanted) return new Date(at)
    at += 60_000
  }
  return new Date(guess)
}

/**
 * Whether `at` is inside one of `windows` (none: always), and if not, when the next one opens (at
 * most 8 days ahead: every window opens within a week).
 */
export function windowState(
  windows: readonly MaintenanceWindow[],
  at: Date,
): { open: true } | { open: false; opensAt: Date } {
  if (windows.length === 0) return { open: true }
  let next: Date | undefined
  for (const w of windows) {
    const [start, end] = [minutesOf(w.start), minutesOf(w.end)]
    const now = localAt(at, w.timeZone)
    const startsOn = (day: number) => w.days.length === 0 || w.days.includes(WEEKDAYS[(day + 4) % 7]!)
    // A window that started yesterday and crosses midnight may still be open.
    for (const day of [now.day - 1, now.day]) {
      if (!startsOn(day)) continue
      const opens = instantOf(day, start, w.timeZone)
      const closes = instantOf(end > start ? day : day + 1, end, w.timeZone)
      if (opens <= at && at < closes) return { open: true }
    }
    for (let day = now.day; day <= now.day + 8; day++) {
      if (!startsOn(day)) continue
      const opens = instantOf(day, start, w.timeZone)
      if (opens > at) {
        if (!next || opens < next) next = opens
        break
      }
    }
  }
  return { open: false, opensAt: next! }
}

/** `3h12m`, `45s`: how long until `to`, for people. Pure. */
export function untilText(from: Date, to: Date): string {
  return durationText(to.getTime() - from.getTime())
}

/** `3h12m`, `12m`, `45s` (`2d3h` past a day): a duration for people. Pure. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d > 0) return `${d}d${h}h`
  if (h > 0) return `${h}h${m}m`
  if (m > 0) return `${m}m`
  return `${s}s`
}

/** Between the windows of one text (the Argo template's `windows` parameter, `step plan --windows`). */
export const WINDOW_SEPARATOR = '; '

/** `"Mon-Fri 02:00-05:00 Europe/Berlin; Sat 00:00-06:00"`: windows as --window takes each, or none. */
export function parseWindowList(flag: string, text: string): MaintenanceWindow[] {
  return text
    .split(';')
    .map((w) => w.trim())
    .filter((w) => w !== '')
    .map((w) => parseWindowFlag(flag, w))
}

/** `Mon-Fri 02:00-05:00 Europe/Berlin`: a window as a flag takes it. Pure. */
export function describeWindow(w: MaintenanceWindow): string {
  return [w.days.join(','), `${w.start}-${w.end}`, w.timeZone].filter((p) => p !== '').join(' ')
}
