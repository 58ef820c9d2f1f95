import { describe, expect, it } from 'vitest'
import { unionMs } from '../../../bench/lib/analyze.js'

describe('bench overhead: the union of the busy spans', () => {
  it('counts overlapping spans once, clips them to the wave and skips those outside it', () => {
    // helm 0-10, pod replacement 5-30, verification 20-40, another helm call 50-60; wave 0-45.
    expect(
      unionMs(
        [
          [0, 10],
          [5, 30],
          [20, 40],
          [50, 60],
        ],
        [0, 45],
      ),
    ).toBe(40)
    expect(
      unionMs(
        [
          [10, 20],
          [30, 35],
        ],
        [0, 100],
      ),
    ).toBe(15)
    expect(unionMs([], [0, 100])).toBe(0)
    expect(
      unionMs(
        [
          [-5, 5],
          [8, 8],
        ],
        [0, 100],
      ),
    ).toBe(5)
  })
})
