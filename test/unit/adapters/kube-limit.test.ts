import { describe, expect, it } from 'vitest'
import { formatLimits, limited, parseLimits, RequestLimiter, type Lane } from '../../../src/adapters/kube-limit.js'
import { adaptiveLimits } from '../../../src/deps.js'

/** A virtual clock: `sleep` advances it, so the limiter's waits are exact and instant. */
function virtualClock() {
  let now = 0
  return {
    now: () => now,
    // Everything already due runs first (as in real time), then the clock moves on.
    sleep: async (ms: number) => {
      await new Promise((resolve) => setImmediate(resolve))
      now += ms
    },
  }
}

/** The most of `calls` 5 ms calls through `limiter` (in `lane`) awaiting their answer at once. */
async function peakInFlight(limiter: RequestLimiter, calls: number, lane?: Lane): Promise<number> {
  let inFlight = 0
  let peak = 0
  await Promise.all(
    Array.from({ length: calls }, () =>
      limiter.run(async () => {
        inFlight++
        peak = Math.max(peak, inFlight)
        await new Promise((resolve) => setTimeout(resolve, 5))
        inFlight--
      }, lane),
    ),
  )
  return peak
}

describe('RequestLimiter', () => {
  it('lets a burst go at once, then holds the sustained rate', async () => {
    const clock = virtualClock()
    const limiter = new RequestLimiter({ qps: 10, burst: 5, maxInFlight: 100 }, clock.now, clock.sleep)
    const startedAt: number[] = []
    await Promise.all(
      Array.from({ length: 15 }, () =>
        limiter.run(async () => {
          startedAt.push(clock.now())
        }),
      ),
    )
    expect(startedAt.slice(0, 5)).toEqual([0, 0, 0, 0, 0])
    // Then one every 100 ms (10 per second): the 15th at 1 s.
    expect(startedAt.slice(5)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
  })

  it('never has more than maxInFlight requests awaiting their answer', async () => {
    const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxInFlight: 3 })
    expect(await peakInFlight(limiter, 20)).toBe(3)
  })

  it('serves the background lane only while no foreground request asks', async () => {
    const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxInFlight: 1 })
    const order: string[] = []
    let finishFirst!: () => void
    const first = limiter.run(
      () =>
        new Promise<void>((resolve) => {
          order.push('fg1')
          finishFirst = resolve
        }),
    )
    await new Promise((resolve) => setImmediate(resolve))
    // The Event asks before the second foreground request, yet goes after it.
    const event = limiter.run(async () => void order.push('event'), 'background')
    const second = limiter.run(async () => void order.push('fg2'))
    await new Promise((resolve) => setImmediate(resolve))
    expect(order).toEqual(['fg1'])
    finishFirst()
    await Promise.all([first, second, event])
    expect(order).toEqual(['fg1', 'fg2', 'event'])
  })

  it("holds the background lane while a foreground request awaits its answer, at most the defer's length", async () => {
    const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxInFlight: 8 }, Date.now, undefined, 50)
    const order: string[] = []
    let answer!: () => void
    const patch = limiter.run(
      () =>
        new Promise<void>((resolve) => {
          answer = () => {
            order.push('patch answered')
            resolve()
          }
        }),
    )
    // A free slot and a token, yet the Event waits for the patch's answer...
    const event = limiter.run(async () => void order.push('event'), 'background')
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(order).toEqual([])
    answer()
    await Promise.all([patch, event])
    expect(order).toEqual(['patch answered', 'event'])
    // ...but not for ever: an answer that never comes lets it go after the defer.
    const hung = limiter.run(() => new Promise<void>(() => undefined))
    const started = Date.now()
    await limiter.run(async () => void order.push('late event'), 'background')
    expect(Date.now() - started).toBeGreaterThanOrEqual(45)
    expect(order.at(-1)).toBe('late event')
    void hung
  })

  it('gives the background lane at most a quarter of the in-flight slots', async () => {
    const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxInFlight: 8 })
    expect(await peakInFlight(limiter, 10, 'background')).toBe(2)
  })

  it('a background request out of tokens goes once time brings one back, with nothing else to wake it', async () => {
    const clock = virtualClock()
    const limiter = new RequestLimiter({ qps: 10, burst: 1, maxInFlight: 100 }, clock.now, clock.sleep)
    const startedAt: number[] = []
    await Promise.all(
      Array.from({ length: 3 }, () => limiter.run(async () => void startedAt.push(clock.now()), 'background')),
    )
    expect(startedAt).toEqual([0, 100, 200])
  })

  it('a failed call frees its slot and the next ones still run', async () => {
    const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxInFlight: 1 })
    await expect(limiter.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    await expect(limiter.run(() => Promise.resolve(7))).resolves.toBe(7)
  })

  it('limited() routes every method of an API object through the limiter', async () => {
    const clock = virtualClock()
    const limiter = new RequestLimiter({ qps: 1, burst: 1, maxInFlight: 10 }, clock.now, clock.sleep)
    const api = limited({ get: async (x: number) => ({ x, at: clock.now() }), version: 'v1' }, limiter)
    expect(api.version).toBe('v1')
    expect(await Promise.all([api.get(1), api.get(2), api.get(3)])).toEqual([
      { x: 1, at: 0 },
      { x: 2, at: 1000 },
      { x: 3, at: 2000 },
    ])
  })
})

describe('RequestLimiter adapts to the control plane', () => {
  const start = { qps: 10, burst: 10, maxInFlight: 4 }
  const cap = { qps: 40, burst: 40, maxInFlight: 16 }
  const throttled = Object.assign(new Error('Too Many Requests'), { code: 429 })

  it('grows by half each second it held requests back while all went well, up to the cap', async () => {
    const clock = virtualClock()
    const limiter = new RequestLimiter({ start, cap }, clock.now, clock.sleep)
    const seen: number[] = []
    for (let i = 0; i < 200; i++) {
      await limiter.run(async () => undefined)
      if (seen.at(-1) !== limiter.limits.qps) seen.push(limiter.limits.qps)
    }
    expect(seen).toEqual([10, 15, 23, 35, 40])
    expect(limiter.limits).toEqual(cap)
  })

  it('halves on a 429, cuts by 30% when the median latency quadruples past 250 ms; never below its floor', async () => {
    const clock = virtualClock()
    const limiter = new RequestLimiter({ start: cap, cap }, clock.now, clock.sleep)
    // A throttled answer after a second of answers: halved.
    await limiter.run(async () => undefined)
    await clock.sleep(1000)
    await expect(limiter.run(() => Promise.reject(throttled))).rejects.toBe(throttled)
    expect(limiter.limits).toEqual({ qps: 20, burst: 20, maxInFlight: 8 })
    // The lowest median so far is 0 ms; a window whose median answer took a second: slow.
    for (const ms of [0, 1000]) await limiter.run(() => clock.sleep(ms))
    expect(limiter.limits).toEqual({ qps: 14, burst: 14, maxInFlight: 6 })
    for (let i = 0; i < 10; i++) {
      await clock.sleep(1000)
      await limiter.run(() => Promise.reject(throttled)).catch(() => undefined)
    }
    expect(limiter.limits).toEqual({ qps: 5, burst: 10, maxInFlight: 4 })
  })

  it('fixed limits (start = cap) never grow, yet still back off when throttled', async () => {
    const clock = virtualClock()
    const limiter = new RequestLimiter(start, clock.now, clock.sleep)
    for (let i = 0; i < 100; i++) await limiter.run(async () => undefined)
    expect(limiter.limits).toEqual(start)
    await clock.sleep(1000)
    await limiter.run(() => Promise.reject(throttled)).catch(() => undefined)
    expect(limiter.limits.qps).toBe(5)
  })
})

describe("RequestLimiter warmed to where the run's last process left it (an Argo step's)", () => {
  const adaptive = { start: { qps: 20, burst: 40, maxInFlight: 16 }, cap: { qps: 400, burst: 800, maxInFlight: 64 } }

  it('starts from the limits handed over, never above its cap, never below where it stands', () => {
    const limiter = new RequestLimiter(adaptive)
    limiter.warmTo({ qps: 300, burst: 1000, maxInFlight: 8 })
    expect(limiter.limits).toEqual({ qps: 300, burst: 800, maxInFlight: 16 })
  })

  it('a fixed limiter (a --kube-* flag given) stays where the flags put it', () => {
    const limiter = new RequestLimiter({ qps: 10, burst: 5, maxInFlight: 4 })
    limiter.warmTo({ qps: 300, burst: 600, maxInFlight: 50 })
    expect(limiter.limits).toEqual({ qps: 10, burst: 5, maxInFlight: 4 })
  })

  it('the lease carries them as text; anything else is no limits at all', () => {
    const limits = { qps: 300, burst: 600, maxInFlight: 48 }
    expect(formatLimits(limits)).toBe('qps=300,burst=600,inFlight=48')
    expect(parseLimits(formatLimits(limits))).toEqual(limits)
    for (const text of [undefined, '', 'qps=0,burst=1,inFlight=1', 'qps=1e9,burst=1,inFlight=1', 'qps=300'])
      expect(parseLimits(text), String(text)).toBeUndefined()
  })
})

describe('adaptiveLimits (the --kube-* flags)', () => {
  it('without flags: from 50/300 (16 in flight) up to 400/800/64; a flag given is its cap and its start', () => {
    expect(adaptiveLimits({})).toEqual({
      start: { qps: 50, burst: 300, maxInFlight: 16 },
      cap: { qps: 400, burst: 800, maxInFlight: 64 },
    })
    expect(adaptiveLimits({ 'kube-qps': 100 })).toEqual({
      start: { qps: 100, burst: 300, maxInFlight: 16 },
      cap: { qps: 100, burst: 800, maxInFlight: 64 },
    })
  })
})
