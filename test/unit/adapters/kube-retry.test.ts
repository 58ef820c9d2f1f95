import { ApiException } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { retryable, retrying, withRetry, type RetryPolicy } from '../../../src/adapters/kube-retry.js'

const apiError = (code: number, headers: Record<string, string> = {}) => new ApiException(code, 'x', '{}', headers)
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })

function policy(): RetryPolicy & { waits: number[] } {
  const waits: number[] = []
  return {
    attempts: 4,
    baseMs: 100,
    maxMs: 1000,
    random: () => 1,
    sleep: async (ms) => {
      waits.push(ms)
    },
    waits,
  }
}

describe('retryable', () => {
  it.each([
    [429, true],
    [500, true],
    [503, true],
    [504, true],
    [400, false],
    [403, false],
    [404, false],
    [409, false],
    [422, false],
  ])('HTTP %i -> %s', (code, retry) => {
    expect(retryable(apiError(code)).retry).toBe(retry)
  })
  it('honours Retry-After on 429', () => {
    expect(retryable(apiError(429, { 'retry-after': '3' }))).toEqual({ retry: true, afterMs: 3000 })
  })
  it('retries dropped connections, not a refused one or other errors', () => {
    expect(retryable(reset()).retry).toBe(true)
    expect(retryable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).retry).toBe(false)
    expect(retryable(new Error('boom')).retry).toBe(false)
  })
})

describe('withRetry', () => {
  it('retries with growing backoff and returns the eventual result', async () => {
    const p = policy()
    let calls = 0
    const result = await withRetry(
      'op',
      async () => {
        if (++calls < 3) throw apiError(503)
        return 'ok'
      },
      p,
    )
    expect(result).toBe('ok')
    expect(p.waits).toEqual([100, 200])
  })
  it('waits at least what Retry-After asks', async () => {
    const p = policy()
    let calls = 0
    await withRetry(
      'op',
      async () => {
        if (++calls < 2) throw apiError(429, { 'retry-after': '2' })
        return 1
      },
      p,
    )
    expect(p.waits).toEqual([2000])
  })
  it('gives up after the attempts and rethrows the last error; never retries a 4xx', async () => {
    const p = policy()
    let calls = 0
    await expect(
      withRetry(
        'op',
        async () => {
          calls++
          throw apiError(500)
        },
        p,
      ),
    ).rejects.toMatchObject({ code: 500 })
    expect(calls).toBe(4)
    calls = 0
    await expect(
      withRetry(
        'op',
        async () => {
          calls++
          throw apiError(404)
        },
        p,
      ),
    ).rejects.toMatchObject({ code: 404 })
    expect(calls).toBe(1)
  })
  it("leaves an eviction refused by a PodDisruptionBudget (429) to the drain's own backoff", async () => {
    let calls = 0
    await expect(
      withRetry(
        'createNamespacedPodEviction',
        async () => {
          calls++
          throw apiError(429)
        },
        policy(),
      ),
    ).rejects.toMatchObject({ code: 429 })
    expect(calls).toBe(1)
  })
  it('retrying() wraps every method of an API object', async () => {
    let calls = 0
    const api = retrying(
      {
        async read(x: number) {
          if (++calls === 1) throw reset()
          return x * 2
        },
      },
      policy(),
    )
    expect(await api.read(21)).toBe(42)
    expect(calls).toBe(2)
  })
})
