/**
 * The one way this adapter waits: list, then watch from the list's resourceVersion, keeping the
 * current set in a Map and asking `decide` after the list and after every event. A watch that
 * closes is resumed from the last resourceVersion seen; 410 Gone (or any watch failure that is not
 * an HTTP refusal) re-lists. Nothing polls: between events the process only holds one socket,
 * and that socket is aborted whichever way the wait ends.
 */
import createDebug from 'debug'
import type { V1ObjectMeta, Watch } from '@kubernetes/client-node'
import type { Decide, WaitResult } from '../ports/cluster.port.js'
import { statusOf, toClusterError, type Permission } from './kube-errors.js'
import { retryable } from './kube-retry.js'
import { timerMs } from '../lifecycle/settings/durations.js'

const debug = createDebug('kata-lcm:kube')

/** The server closes a watch after this long; a fresh one guards against half-open connections. */
const WATCH_REFRESH_SECONDS = 300

/** Pause before retrying after a watch that failed or closed at once, so a flapping server is not hammered. */
const RETRY_PAUSE_MS = 1000

interface KubeObject {
  metadata?: V1ObjectMeta
}

/** A collection to list and watch. */
export interface ListWatchSource<K extends KubeObject> {
  /** For errors and debug lines, e.g. `pods in kube-system (app=kata-deploy)`. */
  what: string
  /** API path of the collection, e.g. `/api/v1/namespaces/kube-system/pods`. */
  path: string
  labelSelector?: string
  fieldSelector?: string
  /** What RBAC must allow for the watch (verb `watch` is implied). */
  permission: Omit<Permission, 'verb'>
  /** The initial (and any re-)list, handing `each` its items page by page; errors are already ClusterErrors. */
  list(each: (items: K[]) => void): Promise<{ resourceVersion: string }>
}

type SessionEnd<T> =
  | { kind: 'decided'; value: T }
  | { kind: 'stopped' }
  | { kind: 'closed'; events: number; ms: number }
  | { kind: 'gone' }
  | { kind: 'failed'; error: unknown }
  | { kind: 'threw'; error: unknown }

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`
}

function pause(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (stop.aborted) return resolve()
    const timer = setTimeout(done, timerMs(ms))
    function done() {
      clearTimeout(timer)
      stop.removeEventListener('abort', done)
      resolve()
    }
    stop.addEventListener('abort', done, { once: true })
  })
}

/**
 * Watches `source` until `decide(currentViews)` returns a value (`{done: true}`) or `timeoutMs`
 * passes (`{done: false, last}` with the last views seen). Rejects with `signal.reason` when
 * `signal` aborts, with a ClusterError when the list or the watch is refused, and with whatever
 * `decide` throws. Read-only; leaves no open request behind.
 */
export async function watchUntil<K extends KubeObject, V, T>(
  watch: Watch,
  source: ListWatchSource<K>,
  toView: (obj: K) => V,
  decide: Decide<V[], T>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<WaitResult<T, V[]>> {
  signal?.throwIfAborted()
  const expiry = new AbortController()
  const timer = setTimeout(() => expiry.abort(), timerMs(timeoutMs))
  const stop = signal ? AbortSignal.any([expiry.signal, signal]) : expiry.signal
  // Views are made once per object change, not per evaluation: at thousands of objects an event
  // must cost O(N) at most (the benchmark found re-sorting and re-converting everything per event
  // quadratic). Order: the list's (by name), then watch arrivals.
  const current = new Map<string, V>()
  let last: V[] = []
  const evaluate = (): T | undefined => {
    last = [...current.values()]
    return decide(last)
  }

  // Advanced by every event, so a closed watch resumes where it stopped; undefined means re-list.
  const state: SessionState<K, V, T> = { current, resourceVersion: undefined, toView, evaluate }

  try {
    while (!stop.aborted) {
      if (state.resourceVersion === undefined) {
        current.clear()
        const listed = await source.list((items) => {
          for (const item of items) current.set(keyOf(item), toView(item))
        })
        state.resourceVersion = listed.resourceVersion
        const value = evaluate()
        if (value !== undefined) return { done: true, value }
        if (stop.aborted) break
      }
      debug('watch %s from resourceVersion %s', source.what, state.resourceVersion)
      const end = await watchSession(watch, source, state, stop)
      if (end.kind === 'decided') return { done: true, value: end.value }
      if (end.kind === 'threw') throw end.error
      if (end.kind === 'stopped') break
      if (end.kind === 'gone') {
        state.resourceVersion = undefined
      } else if (end.kind === 'closed') {
        debug('watch %s closed after %d events, %d ms', source.what, end.events, end.ms)
        if (end.events === 0 && end.ms < RETRY_PAUSE_MS) await pause(RETRY_PAUSE_MS, stop)
      } else {
        const status = statusOf(end.error)
        // 429/5xx while (re)starting a watch are passing: re-list after a pause, like a dropped connection.
        if (status !== undefined && status !== 410 && !retryable(end.error).retry)
          throw toClusterError(`watch ${source.what}`, end.error, { verb: 'watch', ...source.permission })
        debug('watch %s failed (%s): re-listing', source.what, (end.error as Error | undefined)?.message)
        state.resourceVersion = undefined
        await pause(RETRY_PAUSE_MS, stop)
      }
    }
    signal?.throwIfAborted()
    return { done: false, last }
  } finally {
    clearTimeout(timer)
  }
}

/** What a watch's sessions share: the views by key, the resourceVersion to resume from, the verdict. */
interface SessionState<K, V, T> {
  current: Map<string, V>
  resourceVersion: string | undefined
  toView: (obj: K) => V
  evaluate: () => T | undefined
}

/** One watch request from `state.resourceVersion`, until it decides, closes, fails or is stopped. */
function watchSession<K extends KubeObject, V, T>(
  watch: Watch,
  source: ListWatchSource<K>,
  state: SessionState<K, V, T>,
  stop: AbortSignal,
): Promise<SessionEnd<T>> {
  return new Promise((resolve) => {
    const started = Date.now()
    let settled = false
    let events = 0
    let request: AbortController | undefined
    const finish = (end: SessionEnd<T>) => {
      if (settled) return
      settled = true
      stop.removeEventListener('abort', onStop)
      request?.abort()
      resolve(end)
    }
    const onStop = () => finish({ kind: 'stopped' })
    if (stop.aborted) return finish({ kind: 'stopped' })
    stop.addEventListener('abort', onStop, { once: true })

    const query = {
      resourceVersion: state.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: WATCH_REFRESH_SECONDS,
      labelSelector: source.labelSelector,
      fieldSelector: source.fieldSelector,
    }
    const onEvent = (phase: string, obj: K & { code?: number; message?: string }) => {
      if (settled) return
      if (phase === 'ERROR') {
        // 410 Expired: our resourceVersion was compacted away. Anything else: start over too.
        debug('watch %s: ERROR event %d %s', source.what, obj.code, obj.message)
        return finish({ kind: 'gone' })
      }
      events++
      if (obj.metadata?.resourceVersion) state.resourceVersion = obj.metadata.resourceVersion
      if (phase === 'BOOKMARK') return
      if (phase === 'DELETED') state.current.delete(keyOf(obj))
      else state.current.set(keyOf(obj), state.toView(obj))
      try {
        const value = state.evaluate()
        if (value !== undefined) finish({ kind: 'decided', value })
      } catch (error) {
        finish({ kind: 'threw', error })
      }
    }
    // client-node 2 aborts a watch that received nothing for 30 s (a TimeoutError, also how a dead
    // connection ends): a quiet wait for a Job or a helm hook is longer, so it is a closed watch,
    // resumed from its resourceVersion, never a failure.
    const onDone = (error: unknown) => {
      const name = (error as Error | undefined)?.name
      if (error && name !== 'AbortError' && name !== 'TimeoutError') finish({ kind: 'failed', error })
      else finish({ kind: 'closed', events, ms: Date.now() - started })
    }
    watch.watch(source.path, query, onEvent, onDone).then(
      (controller) => {
        request = controller
        if (settled) controller.abort()
      },
      (error: unknown) => finish({ kind: 'failed', error }),
    )
  })
}

/** Stops a shared watch nobody waits on (never seen outside). */
const IDLE = Symbol('no waiter and no keeper')

interface Waiter<V> {
  evaluate(views: V[]): void
  fail(error: unknown): void
}

/** One list-watch and the waits on it. */
interface Shared<V> {
  waiters: Set<Waiter<V>>
  /** The views after the first list and every event; undefined until the first list. */
  last: V[] | undefined
  stop: AbortController
}

/**
 * List-watches shared by the waits on the same collection while a keeper holds them (`keep()`: the
 * CLI's run, so that each wave's waits on the kata-deploy and the verification pods start from the
 * watch the previous wave left running: no list, no new watch per wave). Without a keeper a wait is
 * a plain `watchUntil`. A wait on a shared watch sees the same guarantees: `decide` after its start
 * (on the views as they are) and after every event; `{done: false, last}` at its deadline; rejected
 * with `signal.reason`, with what `decide` throws, or with the ClusterError that ended the watch.
 */
export class SharedWatches {
  private readonly shared = new Map<string, Shared<unknown>>()
  private keepers = 0

  constructor(private readonly watch: Watch) {}

  /** Keeps the watches running between waits until the returned release is called. */
  keep(): () => void {
    this.keepers++
    let released = false
    return () => {
      if (released) return
      released = true
      if (--this.keepers > 0) return
      for (const [key, entry] of this.shared) if (entry.waiters.size === 0) this.retire(key, entry)
    }
  }

  until<K extends KubeObject, V, T>(
    source: ListWatchSource<K>,
    toView: (obj: K) => V,
    decide: Decide<V[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, V[]>> {
    const key = `${source.path}?${source.labelSelector ?? ''}&${source.fieldSelector ?? ''}`
    let entry = this.shared.get(key) as Shared<V> | undefined
    if (!entry && this.keepers === 0) return watchUntil(this.watch, source, toView, decide, timeoutMs, signal)
    entry ??= this.start(key, source, toView)
    const shared = entry
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const finish = (end: () => void) => {
        if (!shared.waiters.delete(waiter)) return
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        if (shared.waiters.size === 0 && this.keepers === 0) this.retire(key, shared)
        end()
      }
      const waiter: Waiter<V> = {
        evaluate(views) {
          try {
            const value = decide(views)
            if (value !== undefined) finish(() => resolve({ done: true, value }))
          } catch (error) {
            finish(() => reject(error))
          }
        },
        fail: (error) => finish(() => reject(error)),
      }
      const onAbort = () => finish(() => reject(signal!.reason))
      const timer = setTimeout(
        () => finish(() => resolve({ done: false, last: shared.last ?? [] })),
        timerMs(timeoutMs),
      )
      signal?.addEventListener('abort', onAbort, { once: true })
      shared.waiters.add(waiter)
      if (shared.last) waiter.evaluate(shared.last)
    })
  }

  /** Stops a watch no wait needs; a later wait on its collection starts a new one. */
  private retire(key: string, entry: Shared<unknown>): void {
    if (this.shared.get(key) === entry) this.shared.delete(key)
    entry.stop.abort(IDLE)
  }

  private start<K extends KubeObject, V>(key: string, source: ListWatchSource<K>, toView: (obj: K) => V): Shared<V> {
    const entry: Shared<V> = { waiters: new Set(), last: undefined, stop: new AbortController() }
    this.shared.set(key, entry as Shared<unknown>)
    const dispatch = (views: V[]) => {
      entry.last = views
      for (const waiter of [...entry.waiters]) waiter.evaluate(views)
      return undefined
    }
    const ended = (error: unknown) => {
      if (this.shared.get(key) === entry) this.shared.delete(key)
      for (const waiter of [...entry.waiters]) waiter.fail(error)
    }
    watchUntil(this.watch, source, toView, dispatch, Infinity, entry.stop.signal).then(
      () => ended(new Error(`watch ${source.what} ended`)),
      (error: unknown) => ended(error === IDLE ? new Error(`watch ${source.what} stopped`) : error),
    )
    return entry
  }
}
