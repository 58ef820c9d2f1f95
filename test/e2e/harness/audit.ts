// The kube-apiserver audit log of the test cluster (JSON lines, level Metadata,
// stage RequestReceived omitted: one ResponseComplete event per request, plus a
// ResponseStarted one for long-running requests such as watches).
//
//   const audit = new AuditLog(e2eCluster().auditLogPath)
//   const t0 = new Date()
//   ... run the CLI ...
//   await audit.barrier(kc)                      // everything before is on disk
//   expect(await audit.writesSince(t0, { userAgentPrefix: 'kata-lcm/' })).toHaveLength(0)
import { randomBytes } from 'node:crypto'
import { open } from 'node:fs/promises'

import type { KubeConfig } from '@kubernetes/client-node'

import { getJson } from './wait.js'

export interface AuditEvent {
  auditID: string
  stage: string
  verb: string
  requestURI: string
  userAgent?: string
  user?: { username?: string; groups?: string[] }
  impersonatedUser?: { username?: string }
  objectRef?: {
    resource?: string
    namespace?: string
    name?: string
    apiGroup?: string
    apiVersion?: string
    subresource?: string
  }
  responseStatus?: { code?: number; status?: string; reason?: string }
  requestReceivedTimestamp: string
  stageTimestamp: string
  [key: string]: unknown
}

export const WRITE_VERBS: readonly string[] = ['create', 'update', 'patch', 'delete', 'deletecollection']

export interface AuditFilter {
  /** Only events of requests received at or after this time. */
  since?: Date
  /** Only events of requests received before this time. */
  until?: Date
  userAgentPrefix?: string
  /** Exact username (kwok clusters: every component uses the admin cert, so prefer userAgentPrefix). */
  username?: string
  verbs?: readonly string[]
  resource?: string
  subresource?: string
  namespace?: string
  name?: string
  apiGroup?: string
  /** Only requests the server accepted (HTTP code < 400). Default: all. */
  succeededOnly?: boolean
  /** Audit stage; default ResponseComplete (one event per request). */
  stage?: string
}

/** Parse an audit timestamp (RFC 3339 with microseconds) to a Date (ms precision). */
export function auditTime(ts: string): Date {
  return new Date(ts)
}

export function matches(ev: AuditEvent, f: AuditFilter): boolean {
  if (ev.stage !== (f.stage ?? 'ResponseComplete')) return false
  const t = auditTime(ev.requestReceivedTimestamp).getTime()
  // audit timestamps have µs precision, Date ms: compare with ms granularity
  if (f.since && t < Math.floor(f.since.getTime())) return false
  if (f.until && t >= f.until.getTime()) return false
  if (f.userAgentPrefix !== undefined && !(ev.userAgent ?? '').startsWith(f.userAgentPrefix)) return false
  if (f.username !== undefined && ev.user?.username !== f.username) return false
  if (f.verbs && !f.verbs.includes(ev.verb)) return false
  const ref = ev.objectRef ?? {}
  if (f.resource !== undefined && ref.resource !== f.resource) return false
  if (f.subresource !== undefined && (ref.subresource ?? '') !== f.subresource) return false
  if (f.namespace !== undefined && ref.namespace !== f.namespace) return false
  if (f.name !== undefined && ref.name !== f.name) return false
  if (f.apiGroup !== undefined && (ref.apiGroup ?? '') !== f.apiGroup) return false
  if (f.succeededOnly && (ev.responseStatus?.code ?? 0) >= 400) return false
  return true
}

/** Incremental reader of the audit log (reads only what was appended since the last call). */
export class AuditLog {
  private offset = 0
  private partial = ''
  private readonly cache: AuditEvent[] = []

  constructor(readonly path: string) {}

  /** All events in the log so far. */
  async events(): Promise<AuditEvent[]> {
    const fh = await open(this.path, 'r')
    try {
      const { size } = await fh.stat()
      if (size < this.offset) {
        // rotated / truncated: start over
        this.offset = 0
        this.partial = ''
        this.cache.length = 0
      }
      if (size > this.offset) {
        const buf = Buffer.alloc(size - this.offset)
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset)
        this.offset += bytesRead
        const text = this.partial + buf.subarray(0, bytesRead).toString('utf8')
        const lines = text.split('\n')
        this.partial = lines.pop() ?? ''
        for (const line of lines) {
          if (line.trim() === '') continue
          try {
            this.cache.push(JSON.parse(line) as AuditEvent)
          } catch {
            // a torn line cannot happen with the partial buffer; ignore garbage
          }
        }
      }
    } finally {
      await fh.close()
    }
    return this.cache
  }

  async find(filter: AuditFilter = {}): Promise<AuditEvent[]> {
    return (await this.events()).filter((e) => matches(e, filter))
  }

  /** Number of events per verb matching the filter. */
  async countByVerb(filter: AuditFilter = {}): Promise<Record<string, number>> {
    const counts: Record<string, number> = {}
    for (const e of await this.find(filter)) counts[e.verb] = (counts[e.verb] ?? 0) + 1
    return counts
  }

  /** Write requests (create/update/patch/delete/deletecollection) received since `t`. */
  async writesSince(t: Date, filter: Omit<AuditFilter, 'since' | 'verbs'> = {}): Promise<AuditEvent[]> {
    return await this.find({ ...filter, since: t, verbs: WRITE_VERBS })
  }

  /**
   * Make sure every request completed before this call is in the log: sends a
   * unique GET and waits until its audit event appears (events are written
   * right after a response, so a barrier request seen implies earlier ones).
   */
  async barrier(kc: KubeConfig, timeoutMs = 10_000): Promise<void> {
    const name = `kata-lcm-audit-barrier-${randomBytes(4).toString('hex')}`
    try {
      await getJson(kc, `/api/v1/namespaces/${name}`)
    } catch {
      // 404 expected
    }
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const evs = await this.events()
      if (evs.some((e) => e.objectRef?.name === name && e.objectRef.resource === 'namespaces')) break
      if (Date.now() > deadline) throw new Error(`audit barrier ${name} not seen in ${this.path} after ${timeoutMs}ms`)
      await new Promise((r) => setTimeout(r, 50))
    }
    // let events of requests that finished just before the barrier land too
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Short human-readable line per event, for assertion messages. */
export function describeEvents(evs: AuditEvent[], max = 30): string {
  const lines = evs.slice(0, max).map((e) => {
    const r = e.objectRef ?? {}
    const what = [r.apiGroup, r.resource, r.subresource].filter(Boolean).join('/')
    return `${e.requestReceivedTimestamp} ${e.verb} ${what} ${r.namespace ?? ''}/${r.name ?? ''} -> ${e.responseStatus?.code ?? '?'} (${e.userAgent ?? ''})`
  })
  if (evs.length > max) lines.push(`... ${evs.length - max} more`)
  return lines.join('\n')
}
