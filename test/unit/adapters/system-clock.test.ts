import { describe, expect, it } from 'vitest'
import { SystemClock } from '../../../src/adapters/system-clock.adapter.js'

describe('SystemClock', () => {
  it('sleeps about the given time', async () => {
    const t0 = Date.now()
    await new SystemClock().sleep(50)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45)
  })

  it('stops sleeping when the signal aborts, with its reason', async () => {
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('interrupted')), 20)
    const t0 = Date.now()
    await expect(new SystemClock().sleep(60_000, controller.signal)).rejects.toThrow('interrupted')
    expect(Date.now() - t0).toBeLessThan(1000)
    await expect(new SystemClock().sleep(10, controller.signal)).rejects.toThrow('interrupted')
  })
})
