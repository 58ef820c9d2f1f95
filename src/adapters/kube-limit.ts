/**
 * Client-side request limits, as client-go and kubectl have them: requests per second with a burst
 * (a token bucket) and a cap on requests in flight, so that a large wave never floods the API server
 * (a 500-node wave once sent about 500 requests at once and the test bed's controller-manager and
 * scheduler lost their leases). Every API call of the Cluster adapter goes through one limiter; a
 * watch's long-running stream does not (its list does). API Priority and Fairness rejections (429
 * with Retry-After) are retried by kube-retry.ts on top of this.
 *
 * The limits adapt to the control plane met, as APF expects of a well-behaved client: each second
 * in which the limiter held requests back, no request was throttled (429) and the median latency
 * stayed low, they grow by half, up to the cap; a second with a 429 halves them, a second whose
 * median latency rose to four times the lowest seen (and at least 250 ms) cuts them by 30%. The
 * `--kube-*` flags are the caps; without them the limits start at 50 qps, burst 300 (kubectl's
 * discovery client's), 16 in flight, and may reach 400/800/64. A process that takes over from one
 * of its run's (an Argo step after the last) starts where that one left them (`warmTo`: KubeCluster
 * reads them from the run's Lease).
 *
 * Requests that tell rather than do (the Events behind `kubectl describe node`) go in the
 * `background` lane: only while no other request waits for its turn or awaits its answer (or once
 * one has waited a second), and with at most a quarter of the in-flight slots. A wave's 50 cordons
 * are followed by 50 Events; in the common lane those held the wave's next requests back by about
 * 60 ms, and beside the wave's requests they took the API server's time from them (bench, 1000 nodes).
 */
import createDebug from 'debug'
import { timerMs } from '../lifecycle/settings/durations.js'
import { DEFAULT_CAPS, DEFAULT_LIMITS } from '../lifecycle/settings/client-limits.js'
import { statusOf } from './kube-errors.js'

const debug = createDebug('kata-lcm:kube')

export interface RequestLimits {
  /** Sustained requests per second. */
  qps: number
  /** Requests that may go at once after a quiet spell (the bucket's size). */
  burst: number
  /** Requests awaiting their response at any moment. */
  maxInFlight: number
}

/** `background`: served only while no `foreground` request waits (see the file's comment). */
export type Lane = 'foreground' | 'background'

/** Where the limits start and how far they may grow (equal: fixed, but for backing off). */
export interface AdaptiveLimits {
  start: RequestLimits
  cap: RequestLimits
}

/** Where the limits start and how far they grow without flags (the settings' help names them). */
export { DEFAULT_CAPS, DEFAULT_LIMITS }

/** How long the limiter looks at the answers before it adjusts. */
const WINDOW_MS = 1000
/** A background request waits for the foreground to be quiet at most this long. */
const BACKGROUND_DEFER_MS = 1000
/** A median latency at least this (and four times the lowest seen) is the control plane slowing down. */
const SLOW_MS = 250

export class RequestLimiter {
  /** The limits in force now (they move between the start's floor and the cap). */
  readonly limits: RequestLimits
  private readonly floor: RequestLimits
  private readonly cap: RequestLimits
  private tokens: number
  private last: number
  private inFlight = 0
  private readonly waiting: (() => void)[] = []
  /** Foreground requests asked and not sent yet: while any, the background lane waits. */
  private foregroundAsking = 0
  private backgroundInFlight = 0
  private backgroundTimer = false
  private deferTimer: NodeJS.Timeout | undefined
  /** Background requests not sent yet, oldest first, with when each asked. */
  private readonly background: { go: () => void; asked: number }[] = []
  /** Token grants are served in order: one timer at a time. */
  private queue: Promise<void> = Promise.resolve()
  /** The answers of the current window, and whether requests had to wait for the limits. */
  private window = { startedAt: 0, latencies: [] as number[], throttled: 0, held: 0 }
  private lowestMedian = Infinity

  constructor(
    limits: RequestLimits | AdaptiveLimits,
    private readonly now: () => number = () => Date.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((resolve) => setTimeout(resolve, timerMs(ms))),
    /** How long a background request waits at most for the foreground's answers. */
    private readonly deferMs = BACKGROUND_DEFER_MS,
  ) {
    const { start, cap } = 'start' in limits ? limits : { start: limits, cap: limits }
    this.limits = { ...start }
    this.cap = { ...cap }
    this.floor = {
      qps: Math.min(start.qps, 5),
      burst: Math.min(start.burst, 10),
      maxInFlight: Math.min(start.maxInFlight, 4),
    }
    this.tokens = start.burst
    this.last = now()
    this.window.startedAt = this.last
  }

  /**
   * Starts from limits an earlier process of the same run reached on this control plane (an Argo
   * step hands them to the next through the run's Lease): raised to them, never above the cap, and
   * from there adapting as ever (a 429 or a slowing control plane still cuts them).
   */
  warmTo(reached: RequestLimits): void {
    const before = JSON.stringify(this.limits)
    for (const key of ['qps', 'burst', 'maxInFlight'] as const)
      this.limits[key] = Math.min(this.cap[key], Math.max(this.limits[key], Math.round(reached[key])))
    if (JSON.stringify(this.limits) !== before)
      debug(
        "client limits now %d qps, burst %d, %d in flight (where the run's last step left them)",
        this.limits.qps,
        this.limits.burst,
        this.limits.maxInFlight,
      )
    for (let free = this.limits.maxInFlight - this.inFlight; free > 0 && this.waiting.length > 0; free--)
      this.waiting.shift()!()
  }

  /** Runs `call` once a token and an in-flight slot are free (and, `background`, once all is quiet); its answer feeds the adaptation. */
  async run<T>(call: () => Promise<T>, lane: Lane = 'foreground'): Promise<T> {
    const asked = this.now()
    if (lane === 'background') await this.quiet()
    else await this.turn()
    const sent = this.now()
    // Only the foreground's waits say the limits held work back; the background waits by design.
    if (sent > asked && lane === 'foreground') this.window.held++
    try {
      const result = await call()
      this.answered(sent, false)
      return result
    } catch (error) {
      this.answered(sent, statusOf(error) === 429)
      throw error
    } finally {
      this.inFlight--
      if (lane === 'background') this.backgroundInFlight--
      this.waiting.shift()?.()
      this.wakeBackground()
    }
  }

  /** A foreground request's token and slot; while it asks, the background lane waits. */
  private async turn(): Promise<void> {
    this.foregroundAsking++
    try {
      await this.token()
      await this.slot()
    } finally {
      if (--this.foregroundAsking === 0) this.wakeBackground()
    }
  }

  /** A background request's token and slot: given only when nothing else asks or awaits its answer, and within its share of the slots. */
  private quiet(): Promise<void> {
    return new Promise((go) => {
      this.background.push({ go, asked: this.now() })
      this.wakeBackground()
    })
  }

  private wakeBackground(): void {
    while (this.background.length > 0 && this.foregroundAsking === 0) {
      this.refill()
      const share = Math.max(1, Math.floor(this.limits.maxInFlight / 4))
      if (this.inFlight >= this.limits.maxInFlight || this.backgroundInFlight >= share) return
      // Foreground answers still awaited: wait for them, up to deferMs from the oldest's ask.
      const deferredFor = this.now() - this.background[0]!.asked
      if (this.inFlight > this.backgroundInFlight && deferredFor < this.deferMs) {
        // A foreground completion wakes the lane; this timer only bounds the wait (and never holds the process).
        this.deferTimer ??= setTimeout(() => {
          this.deferTimer = undefined
          this.wakeBackground()
        }, this.deferMs - deferredFor).unref()
        return
      }
      if (this.tokens < 1) {
        // Only time brings a token back: look again then (a completion or a foreground request may wake it sooner).
        if (!this.backgroundTimer) {
          this.backgroundTimer = true
          void this.sleep(((1 - this.tokens) / this.limits.qps) * 1000).then(() => {
            this.backgroundTimer = false
            this.wakeBackground()
          })
        }
        return
      }
      this.tokens -= 1
      this.inFlight++
      this.backgroundInFlight++
      this.background.shift()!.go()
    }
  }

  /** One answer in; once a window is over, the limits move (see the file's comment). */
  private answered(sent: number, throttled: boolean): void {
    const now = this.now()
    const w = this.window
    w.latencies.push(now - sent)
    if (throttled) w.throttled++
    if (now - w.startedAt < WINDOW_MS) return
    const sorted = w.latencies.sort((a, b) => a - b)
    const median = sorted[Math.floor(sorted.length / 2)]!
    this.lowestMedian = Math.min(this.lowestMedian, median)
    const slow = median >= Math.max(SLOW_MS, 4 * this.lowestMedian)
    const factor = w.throttled > 0 ? 0.5 : slow ? 0.7 : w.held > 0 ? 1.5 : 1
    this.window = { startedAt: now, latencies: [], throttled: 0, held: 0 }
    if (factor !== 1)
      this.scale(
        factor,
        w.throttled > 0 ? 'throttled (429)' : slow ? `median latency ${median} ms` : 'held back, all well',
      )
  }

  private scale(factor: number, why: string): void {
    const before = JSON.stringify(this.limits)
    for (const key of ['qps', 'burst', 'maxInFlight'] as const) {
      const value = Math.round(this.limits[key] * factor)
      this.limits[key] = Math.min(this.cap[key], Math.max(this.floor[key], value))
    }
    this.tokens = Math.min(this.tokens, this.limits.burst)
    if (JSON.stringify(this.limits) !== before)
      debug(
        'client limits now %d qps, burst %d, %d in flight (%s)',
        this.limits.qps,
        this.limits.burst,
        this.limits.maxInFlight,
        why,
      )
    // A larger in-flight cap lets waiting requests go now (each checks again for a slot).
    for (let free = this.limits.maxInFlight - this.inFlight; free > 0 && this.waiting.length > 0; free--)
      this.waiting.shift()!()
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

/** Limits as a Lease annotation carries them: `qps=400,burst=800,inFlight=64`. Pure. */
export function formatLimits(limits: RequestLimits): string {
  return `qps=${limits.qps},burst=${limits.burst},inFlight=${limits.maxInFlight}`
}

/** The limits of `formatLimits`'s text; undefined for anything else (an annotation someone edited). Pure. */
export function parseLimits(text: string | undefined): RequestLimits | undefined {
  const m = /^qps=(\d+),burst=(\d+),inFlight=(\d+)$/.exec(text ?? '')
  if (!m) return undefined
  const [qps, burst, maxInFlight] = [m[1], m[2], m[3]].map(Number) as [number, number, number]
  return qps > 0 && burst > 0 && maxInFlight > 0 ? { qps, burst, maxInFlight } : undefined
}

/** Wraps every method of a client-node API object so each call goes through `limiter` (in `lane`). */
export function limited<T extends object>(api: T, limiter: RequestLimiter, lane: Lane = 'foreground'): T {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) =>
        limiter.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), lane)
    },
  })
}
