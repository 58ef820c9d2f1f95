// Streaming reader of the kube-apiserver audit log (JSON lines, Metadata level). At 5000 nodes the
// log grows by hundreds of MB (kwok's node lease renewals), so a run's window is read from a byte
// offset and only the fields the analysis needs are kept.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'

export interface Ev {
  verb: string
  ua: string
  resource: string
  subresource: string
  namespace: string
  name: string
  uri: string
  code: number
  /** requestReceivedTimestamp, ms since epoch with µs precision. */
  t: number
  /** stageTimestamp (response complete), ms since epoch with µs precision. */
  end: number
}

/** RFC 3339 with µs ("2026-11-21T05:00:43.123456Z") -> ms since epoch, keeping the µs. */
export function tsMs(ts: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts)
  if (!m) return Date.parse(ts)
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0
  return Date.parse(`${m[1]}${m[3]}`) + frac
}

export async function auditSize(path: string): Promise<number> {
  return (await stat(path)).size
}

/** Every ResponseComplete event from byte `offset` whose request was received in [since, until] and that `keep` accepts. */
export async function readWindow(
  path: string,
  offset: number,
  since: number,
  until: number,
  keep: (e: Ev) => boolean,
): Promise<{ events: Ev[]; lines: number }> {
  const events: Ev[] = []
  let lines = 0
  const rl = createInterface({
    input: createReadStream(path, { start: offset, encoding: 'utf8' }),
    crlfDelay: Infinity,
  })
  for await (const line of rl) {
    lines++
    if (!line.includes('"ResponseComplete"')) continue
    let raw: {
      stage?: string
      verb?: string
      userAgent?: string
      requestURI?: string
      requestReceivedTimestamp?: string
      stageTimestamp?: string
      objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string }
      responseStatus?: { code?: number }
    }
    try {
      raw = JSON.parse(line) as typeof raw
    } catch {
      continue // a torn first line when the offset falls mid-line
    }
    if (raw.stage !== 'ResponseComplete' || !raw.requestReceivedTimestamp) continue
    const t = tsMs(raw.requestReceivedTimestamp)
    if (t < since || t > until) continue
    const e: Ev = {
      verb: raw.verb ?? '',
      ua: raw.userAgent ?? '',
      resource: raw.objectRef?.resource ?? '',
      subresource: raw.objectRef?.subresource ?? '',
      namespace: raw.objectRef?.namespace ?? '',
      name: raw.objectRef?.name ?? '',
      uri: raw.requestURI ?? '',
      code: raw.responseStatus?.code ?? 0,
      t,
      end: tsMs(raw.stageTimestamp ?? raw.requestReceivedTimestamp),
    }
    if (keep(e)) events.push(e)
  }
  return { events, lines }
}

/** Waits until an event naming `barrierName` (a namespaces GET) is in the log after `offset`. */
export async function waitForBarrier(
  path: string,
  offset: number,
  barrierName: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { events } = await readWindow(
      path,
      offset,
      0,
      Infinity,
      (e) => e.resource === 'namespaces' && e.name === barrierName,
    )
    if (events.length > 0) break
    if (Date.now() > deadline) throw new Error(`audit barrier ${barrierName} not seen in ${path}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  await new Promise((r) => setTimeout(r, 200))
}

export function isKataLcm(e: Ev): boolean {
  return e.ua.startsWith('kata-lcm/')
}
export function isHelm(e: Ev): boolean {
  return /^helm\//i.test(e.ua)
}
export function isKwok(e: Ev): boolean {
  return e.ua.startsWith('kwok')
}
export function isKubectl(e: Ev): boolean {
  return e.ua.startsWith('kubectl/')
}

export function countBy(events: readonly Ev[], key: (e: Ev) => string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const e of events) out[key(e)] = (out[key(e)] ?? 0) + 1
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]))
}

export function resourceKey(e: Ev): string {
  return `${e.verb} ${e.resource}${e.subresource ? `/${e.subresource}` : ''}`
}
