/**
 * Client-side request limits, as client-go and kubectl have them: requests per second with a burst
 * (a token bucket) and a cap on requests in flight, so that a large wave never floods the API server
 * (a 500-node wave once sent about 500 requests at once and the test bed's controller-manager and
 * scheduler lost their leases). Every API call of the Cluster adapter goes through one limiter; a
 * watch's long-running stream does not (its list does). API Priority and Fairness rejections (429
 * with Retry-After) are retried by kube-retry.ts on top of this.
 */
import { timerMs } from '../lifecycle/durations.js'

export interface RequestLimits {
  /** Sustained requests per second. */
  qps: number
  /** Requests that may go at once after a quiet spell (the bucket's size). */
  burst: number
  /** Requests awaiting their response at any moment. */
  maxInFlight: number
}

/** Defaults that keep a modest control plane healthy (kubectl's are 50/300; client-go's 5/10). */
export const DEFAULT_LIMITS: RequestLimits = { qps: 20, burst: 40, maxInFlight: 16 }

export class RequestLimiter {
  private tokens: number
  private last: number
  private inFlight = 0
  private readonly waiting: (() => void)[] = []
  /** Token grants are served in order: one timer at a time. */
  private queue: Promise<void> = Promise.resolve()

  constructor(
    readonly limits: RequestLimits,
    private readonly now: () => number = () => Date.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((resolve) => setTimeout(resolve, timerMs(ms))),
  ) {
    this.tokens = limits.burst
    this.last = now()
  }

  /** Runs `call` once a token and an in-flight slot are free. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    await this.token()
    await this.slot()
    try {
      return await call()
    } finally {
      this.inFlight--
      this.waiting.shift()?.()
    }
  }

  private token(): Promise<void> {
    const turn = this.queue.then(async () => {
      this.refill()
      if (this.tokens < 1) {
        await this.sleep(((1 - this.tokens) / this.limits.qps) * 1000)
        this.refill()
      }
      this.tokens -= 1
    })
    this.queue = turn.catch(() => undefined)
    return turn
  }

  private refill(): void {
    const now = this.now()
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.last) / 1000) * this.limits.qps)
    this.last = now
  }

  private async slot(): Promise<void> {
    while (this.inFlight >= this.limits.maxInFlight) await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.inFlight++
  }
}

/** Wraps every method of a client-node API object so each call goes through `limiter`. */
export function limited<T extends object>(api: T, limiter: RequestLimiter): T {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) =>
        limiter.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args))
    },
  })
}
