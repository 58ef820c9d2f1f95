/** Real time for the Clock port. */
import type { Clock } from '../ports/clock.port.js'
import { timerMs } from '../lifecycle/settings/durations.js'

/** Wall-clock time; `sleep` is for backoff only and stops early when `signal` aborts. */
export class SystemClock implements Clock {
  /** Pure read of the current time. */
  now(): Date {
    return new Date()
  }

  /** Resolves after `ms`; rejects with `signal.reason` as soon as `signal` aborts (no timer left behind). */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const onAbort = () => {
        clearTimeout(timer)
        reject(signal?.reason)
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, timerMs(ms))
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
