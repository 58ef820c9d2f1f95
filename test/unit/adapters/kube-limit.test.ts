import { describe, expect, it } from 'vitest'
import { limited, RequestLimiter } from '../../../src/adapters/kube-limit.js'

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
    let inFlight = 0
    let peak = 0
    await Promise.all(
      Array.from({ length: 20 }, () =>
        limiter.run(async () => {
          inFlight++
          peak = Math.max(peak, inFlight)
          await new Promise((resolve) => setTimeout(resolve, 5))
          inFlight--
        }),
      ),
    )
    expect(peak).toBe(3)
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
