import { afterEach, describe, expect, it, vi } from 'vitest'
import { exitOnTermination } from '../../../src/step-command.js'

describe('a step terminated by a signal (its pod deleted, its node drained)', () => {
  const before = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') }
  afterEach(() => {
    vi.restoreAllMocks()
    // Only this test's listeners go (vitest has its own).
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      for (const l of process.listeners(signal)) if (!before[signal].includes(l)) process.off(signal, l)
  })

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s: exits at once with %i, the code the template retries a lost pod on (143)', (signal, code) => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never)
    exitOnTermination()
    process.emit(signal)
    expect(exit).toHaveBeenCalledWith(code)
  })
})
