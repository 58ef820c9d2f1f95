/**
 * Retries for API calls: 429 (honouring Retry-After), 5xx and dropped connections, with exponential
 * backoff and full jitter. Every typed API client is wrapped once, so no call site can forget it.
 * Writes stay safe to retry: patches are merge patches, deletes treat 404 as done, and creates
 * handle 409 AlreadyExists at the call site.
 */
import createDebug from 'debug'
import { ApiException } from '@kubernetes/client-node'
import { networkCode, statusOf } from './kube-errors.js'
import { timerMs } from '../lifecycle/settings/durations.js'

const debug = createDebug('kata-lcm:kube')

export interface RetryPolicy {
  attempts: number
  baseMs: number
  maxMs: number
  sleep: (ms: number) => Promise<void>
  random: () => number
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  baseMs: 200,
  maxMs: 5_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, timerMs(ms))),
  random: Math.random,
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504])
// Not ECONNREFUSED: nothing listening is a wrong --kubeconfig or a dead server; say so at once.
const RETRY_NETWORK = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])
// An eviction's 429 is a PodDisruptionBudget's answer, which the drain retries with its own backoff.
const NO_RETRY_ON_429 = new Set(['createNamespacedPodEviction'])

/** Whether a failed call may be retried, and after how long the server asked to wait. Pure. */
export function retryable(error: unknown): { retry: boolean; afterMs?: number } {
  const status = statusOf(error)
  if (status !== undefined) {
    if (!RETRY_STATUS.has(status)) return { retry: false }
    const header =
      error instanceof ApiException ? (error.headers as Record<string, string> | undefined)?.['retry-after'] : undefined
    const seconds = header === undefined ? Number.NaN : Number(header)
    return Number.isFinite(seconds) ? { retry: true, afterMs: seconds * 1000 } : { retry: true }
  }
  // undici's "fetch failed" carries the socket's code in its cause: the code decides when there is one.
  const code = networkCode(error)
  if (code !== undefined) return { retry: RETRY_NETWORK.has(code) }
  return {
    retry: /socket hang up|fetch failed|other side closed/i.test(String((error as Error | undefined)?.message ?? '')),
  }
}

/** Runs `call`, retrying retryable failures per `policy`; the last failure is rethrown as is. */
export async function withRetry<T>(
  what: string,
  call: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      const verdict = retryable(error)
      if (!verdict.retry || attempt >= policy.attempts || (NO_RETRY_ON_429.has(what) && statusOf(error) === 429))
        throw error
      const backoff = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1))
      const wait = Math.max(verdict.afterMs ?? 0, Math.round(policy.random() * backoff))
      debug(
        '%s failed (%s); retry %d/%d in %dms',
        what,
        statusOf(error) ?? (error as Error).message,
        attempt,
        policy.attempts - 1,
        wait,
      )
      await policy.sleep(wait)
    }
  }
}

/** Wraps every method of a client-node API object with `withRetry`. */
export function retrying<T extends object>(api: T, policy: RetryPolicy = DEFAULT_RETRY): T {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) =>
        withRetry(String(property), () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), policy)
    },
  })
}
