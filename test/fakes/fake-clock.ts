import type { Clock } from '../../src/ports/clock.port.js'

interface Timer {
  at: number
  seq: number
  fire: () => void
}

export interface FakeClockOptions {
  /** Start of virtual time. */
  start?: Date
  /**
   * true (default): a discrete-event clock. Whenever the process is idle (every microtask has run,
   * so all code under test is waiting on a timer or a watch deadline), virtual time jumps to the
   * next timer and fires it. Deterministic, and a 10-minute timeout costs no real time.
   * false: time moves only through `advance()`.
   */
  autoAdvance?: boolean
}

/**
 * Virtual time for tests. Every delay in the fakes (pod start, termination, Job runs, watch
 * deadlines) and every `sleep` of the code under test is a timer here, so a run is repeatable and
 * `elapsedMs()` shows how much virtual time a phase took.
 */
export class FakeClock implements Clock {
  private readonly startMs: number
  private nowMs: number
  private timers: Timer[] = []
  private seq = 0
  private pumpQueued = false
  readonly autoAdvance: boolean

  constructor(options: FakeClockOptions = {}) {
    this.startMs = (options.start ?? new Date('2025-06-01T10:00:00.000Z')).getTime()
    this.nowMs = this.startMs
    this.autoAdvance = options.autoAdvance ?? true
  }

  now(): Date {
    return new Date(this.nowMs)
  }

  /** Virtual milliseconds since the clock was created. */
  elapsedMs(): number {
    return this.nowMs - this.startMs
  }

  /** Calls `fire` once `ms` of virtual time has passed. Returns a cancel function. */
  setTimer(ms: number, fire: () => void): () => void {
    const timer: Timer = { at: this.nowMs + Math.max(0, ms), seq: this.seq++, fire }
    this.timers.push(timer)
    this.schedulePump()
    return () => {
      this.timers = this.timers.filter((t) => t !== timer)
    }
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const onAbort = () => {
        cancel()
        reject(signal!.reason)
      }
      const cancel = this.setTimer(ms, () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Manual mode: moves time forward by `ms`, firing due timers in order and letting the code react between them. */
  async advance(ms: number): Promise<void> {
    const until = this.nowMs + ms
    for (;;) {
      await settle()
      const next = this.next()
      if (next === undefined || next.at > until) break
      this.fireTimer(next)
    }
    this.nowMs = until
    await settle()
  }

  /** Timers not yet fired (for tests of the fakes themselves). */
  pendingTimers(): number {
    return this.timers.length
  }

  private next(): Timer | undefined {
    return [...this.timers].sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
  }

  private fireTimer(timer: Timer): void {
    this.timers = this.timers.filter((t) => t !== timer)
    this.nowMs = Math.max(this.nowMs, timer.at)
    timer.fire()
  }

  private schedulePump(): void {
    if (!this.autoAdvance || this.pumpQueued) return
    this.pumpQueued = true
    // setImmediate runs only after the microtask queue is empty: the code under test is idle.
    setImmediate(() => {
      this.pumpQueued = false
      const next = this.next()
      if (next === undefined) return
      this.fireTimer(next)
      this.schedulePump()
    })
  }
}

/** Lets every queued microtask (and the reactions they queue) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
