// Watch-based waits (list, then watch from the list's resourceVersion; no
// sleep loops). Paths are collection paths, e.g. '/api/v1/nodes' or
// '/apis/apps/v1/namespaces/ns/daemonsets'.
import https from 'node:https'
import http from 'node:http'

import { type KubeConfig, Watch } from '@kubernetes/client-node'

/** The parts of any Kubernetes object these helpers look at. */
export interface KubeObject {
  metadata?: {
    name?: string
    namespace?: string
    labels?: Record<string, string>
  }
}

export interface WaitOptions {
  labelSelector?: string
  fieldSelector?: string
  /** Used in the timeout error. */
  description?: string
}

interface ListResponse<T> {
  metadata?: { resourceVersion?: string }
  items?: T[]
}

function withQuery(path: string, query: Record<string, string | undefined>): string {
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, v)
  const s = qs.toString()
  return s === '' ? path : `${path}${path.includes('?') ? '&' : '?'}${s}`
}

/** GET a path of the API server as JSON (no client-go style typing). */
export async function getJson<T = unknown>(kc: KubeConfig, path: string): Promise<T> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('kubeconfig has no current cluster')
  const url = new URL(cluster.server + path)
  const opts: https.RequestOptions = {
    method: 'GET',
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    headers: { Accept: 'application/json' },
  }
  await kc.applyToHTTPSOptions(opts)
  const mod = url.protocol === 'https:' ? https : http
  return await new Promise<T>((resolve, reject) => {
    const req = mod.request(opts, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 300) {
          const err = new Error(`GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 500)}`) as Error & {
            statusCode?: number
          }
          err.statusCode = res.statusCode
          reject(err)
          return
        }
        try {
          resolve(JSON.parse(body) as T)
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)))
        }
      })
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path}: timeout`)))
    req.end()
  })
}

function keyOf(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`
}

function summarize(objs: KubeObject[]): string {
  const lines = objs.slice(0, 20).map((o) => {
    const status = (o as { status?: unknown }).status
    return `  ${keyOf(o)}: ${JSON.stringify(status ?? {}).slice(0, 400)}`
  })
  if (objs.length > 20) lines.push(`  ... ${objs.length - 20} more`)
  return lines.join('\n')
}

/**
 * Follows the set of objects at `path` (filtered by the selectors): list, then watch from the list's
 * resourceVersion, again from a fresh list whenever the watch ends (timeouts, 410 Gone, ...).
 * `onChange` sees the whole set after the list and after every watch event; it is never called again
 * once `stop` was. `onError` gets the error that made it give up (20 failures in a row).
 */
export function followList<T extends KubeObject = KubeObject>(
  kc: KubeConfig,
  path: string,
  onChange: (objs: T[]) => void,
  opts: WaitOptions & { onError?: (err: Error) => void } = {},
): { stop: () => void; snapshot: () => T[] } {
  const state = new Map<string, T>()
  let controller: AbortController | undefined
  let stopped = false
  const watch = new Watch(kc)
  const stop = () => {
    stopped = true
    controller?.abort()
  }
  const giveUp = (e: unknown) => {
    stop()
    opts.onError?.(e instanceof Error ? e : new Error(String(e)))
  }
  let failures = 0
  const cycle = async (): Promise<void> => {
    if (stopped) return
    let rv: string | undefined
    try {
      const list = await getJson<ListResponse<T>>(
        kc,
        withQuery(path, { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector }),
      )
      state.clear()
      for (const item of list.items ?? []) state.set(keyOf(item), item)
      rv = list.metadata?.resourceVersion
    } catch (e) {
      if (++failures > 20) return giveUp(e)
      setTimeout(() => void cycle(), 250)
      return
    }
    if (stopped) return
    onChange([...state.values()])
    if (stopped) return
    controller = await watch.watch(
      path,
      {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        resourceVersion: rv,
        allowWatchBookmarks: true,
      },
      (phase: string, obj: T) => {
        if (stopped) return
        if (phase === 'ADDED' || phase === 'MODIFIED') state.set(keyOf(obj), obj)
        else if (phase === 'DELETED') state.delete(keyOf(obj))
        else return // BOOKMARK, ERROR (the watch ends and is restarted)
        failures = 0
        onChange([...state.values()])
      },
      (err: unknown) => {
        if (stopped) return
        if (err && ++failures > 20) return giveUp(err)
        setTimeout(() => void cycle(), err ? 250 : 0)
      },
    )
    if (stopped) controller.abort()
  }
  void cycle()
  return { stop, snapshot: () => [...state.values()] }
}

/**
 * Wait until `predicate` holds for the set of objects at `path` (filtered by
 * the selectors), evaluated on the initial list and after every watch event.
 * Resolves with the objects at that moment.
 */
export async function waitForList<T extends KubeObject = KubeObject>(
  kc: KubeConfig,
  path: string,
  predicate: (objs: T[]) => boolean,
  timeoutMs = 60_000,
  opts: WaitOptions = {},
): Promise<T[]> {
  return await new Promise<T[]>((resolve, reject) => {
    let settled = false
    const finish = (err: Error | undefined, value?: T[]) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      follower.stop()
      if (err) reject(err)
      else resolve(value ?? [])
    }
    const timer = setTimeout(() => {
      finish(
        new Error(
          `timed out after ${timeoutMs}ms waiting for ${opts.description ?? 'condition'} on ${withQuery(path, { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector })}; last state:\n${summarize(follower.snapshot())}`,
        ),
      )
    }, timeoutMs)
    const follower = followList<T>(
      kc,
      path,
      (objs) => {
        let ok: boolean
        try {
          ok = predicate(objs)
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)))
          return
        }
        if (ok) finish(undefined, objs)
      },
      { ...opts, onError: (e) => finish(e) },
    )
  })
}

/** Wait until some object at `path` satisfies `predicate`; resolves with it. */
export async function waitFor<T extends KubeObject = KubeObject>(
  kc: KubeConfig,
  path: string,
  predicate: (obj: T) => boolean,
  timeoutMs = 60_000,
  opts: WaitOptions = {},
): Promise<T> {
  let found: T | undefined
  await waitForList<T>(
    kc,
    path,
    (objs) => {
      found = objs.find((o) => predicate(o))
      return found !== undefined
    },
    timeoutMs,
    opts,
  )
  return found as T
}

/** Wait for the object `name` in collection `path` to satisfy `predicate`. */
export async function waitForObject<T extends KubeObject = KubeObject>(
  kc: KubeConfig,
  path: string,
  name: string,
  predicate: (obj: T) => boolean,
  timeoutMs = 60_000,
  description?: string,
): Promise<T> {
  return await waitFor<T>(kc, path, predicate, timeoutMs, {
    fieldSelector: `metadata.name=${name}`,
    description: description ?? `${name} to match`,
  })
}

/** Wait until no object named `name` exists in `path`. */
export async function waitForDeletion(kc: KubeConfig, path: string, name: string, timeoutMs = 60_000): Promise<void> {
  await waitForList(kc, path, (objs) => objs.length === 0, timeoutMs, {
    fieldSelector: `metadata.name=${name}`,
    description: `${name} to be deleted`,
  })
}

// ---- small predicates used by several tests -------------------------------

interface Condition {
  type?: string
  status?: string
}

export function hasCondition(obj: unknown, type: string, status = 'True'): boolean {
  const conds = (obj as { status?: { conditions?: Condition[] } }).status?.conditions ?? []
  return conds.some((c) => c.type === type && c.status === status)
}

export function podPhase(obj: unknown): string | undefined {
  return (obj as { status?: { phase?: string } }).status?.phase
}
