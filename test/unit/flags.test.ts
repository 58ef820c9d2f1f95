import { describe, expect, it } from 'vitest'
import { booleanSetting, defaultedSetting, requiredSetting, stringSetting } from '../../src/flags.js'

describe('a flag built from the settings table', () => {
  it('takes the kind its entry gives, and fails as the command loads when built with another', () => {
    expect(() => stringSetting('drain')).toThrow(
      'flags: --drain is built with stringSetting, but its entry in the settings table is a boolean (booleanSetting)',
    )
    expect(() => stringSetting('batch-size')).toThrow(/has a default \(defaultedSetting\)/)
    expect(() => defaultedSetting('canary')).toThrow(/has no default \(stringSetting\)/)
    expect(() => booleanSetting('soak')).toThrow(/is not a boolean/)
    expect(() => requiredSetting('chart')).toThrow(/has a default or a policy field/)
  })

  it("gives a run's boolean its --no- form, and a process's (--dry-run) none", () => {
    expect(booleanSetting('drain-force').allowNo).toBe(true)
    expect(booleanSetting('allow-downgrade').allowNo).toBe(true)
    expect(booleanSetting('dry-run').allowNo).toBe(false)
  })
})
