import { describe, expect, it } from 'vitest'
import { InputError } from '../../../src/lifecycle/errors.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { planStep, waveStep, windowStep } from '../../../src/lifecycle/services/steps.service.js'
import { chartDefaults, parsePolicy } from '../../../src/lifecycle/policy/policy.js'
import { policyWindows, upgradeRequestFrom } from '../../../src/flags.js'
import { UPGRADE_FLAGS } from '../../fakes/upgrade-flags.js'
import { RELEASE, scenario, statusWrites } from '../../fakes/scenario.js'
import {
  describeWindow,
  parseWindow,
  parseWindowFlag,
  parseWindowList,
  untilText,
  windowState,
  type MaintenanceWindow,
} from '../../../src/lifecycle/gates/window.js'

const at = (iso: string) => new Date(iso)
/** The Argo workflow holding the run's lock. */
const WF = 'argo/kata-lcm-w1'
const BASE_FLAGS = UPGRADE_FLAGS
const berlin: MaintenanceWindow = parseWindowFlag('--window', 'Mon-Fri 02:00-05:00 Europe/Berlin')

/** A daily UTC window from `fromMs` to `toMs` after `start` (to the minute), as --window takes it. */
function windowAfter(start: Date, fromMs: number, toMs: number): MaintenanceWindow {
  const hh = (ms: number) => new Date(start.getTime() + ms).toISOString().slice(11, 16)
  return parseWindowFlag('--window', `${hh(fromMs)}-${hh(toMs)} UTC`)
}

describe('maintenance windows', () => {
  it('inside: a wave may start; outside: when the next window opens (weekdays in the zone)', () => {
    // Friday 2026-12-04, 02:30 in Berlin (CET, UTC+1).
    expect(windowState([berlin], at('2026-12-04T01:30:00Z'))).toEqual({ open: true })
    // 06:00 on that Friday: closed until Monday 02:00 CET.
    expect(windowState([berlin], at('2026-12-04T05:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-07T01:00:00Z'),
    })
    // The end is not in the window.
    expect(windowState([berlin], at('2026-12-04T04:00:00Z')).open).toBe(false)
    expect(windowState([], at('2026-12-04T12:00:00Z'))).toEqual({ open: true })
  })

  it('a window crossing midnight runs from its start on a listed day to its end on the next', () => {
    const night = parseWindowFlag('--window', 'Fri 22:00-04:00')
    expect(windowState([night], at('2026-12-04T23:00:00Z')).open).toBe(true)
    // Saturday 03:00: still Friday's window, although Saturday is not listed.
    expect(windowState([night], at('2026-12-05T03:00:00Z')).open).toBe(true)
    expect(windowState([night], at('2026-12-05T04:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-11T22:00:00Z'),
    })
    // Thursday 03:00: Wednesday's night is not listed.
    expect(windowState([night], at('2026-12-03T03:00:00Z')).open).toBe(false)
  })

  it("daylight saving: a start in the spring-forward gap opens at the gap's end; a repeated hour opens at its first", () => {
    // Berlin, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist.
    const gap = parseWindowFlag('--window', 'Sun 02:30-04:00 Europe/Berlin')
    expect(windowState([gap], at('2026-03-29T00:30:00Z'))).toEqual({ open: false, opensAt: at('2026-03-29T01:00:00Z') })
    expect(windowState([gap], at('2026-03-29T01:30:00Z')).open).toBe(true)
    // Sunday 2026-10-25: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice.
    const twice = parseWindowFlag('--window', 'Sun 02:30-03:30 Europe/Berlin')
    expect(windowState([twice], at('2026-10-25T00:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-10-25T00:30:00Z'),
    })
    // A window is a span of wall-clock time: 02:30 CEST to 03:30 CET is two hours that night.
    expect(windowState([twice], at('2026-10-25T02:00:00Z')).open).toBe(true)
    expect(windowState([twice], at('2026-10-25T02:30:00Z')).open).toBe(false)
  })

  it('several windows: open in any, the earliest next opening', () => {
    const morning = parseWindowFlag('--window', '06:00-07:00 UTC')
    expect(windowState([berlin, morning], at('2026-12-05T06:30:00Z')).open).toBe(true)
    expect(windowState([berlin, morning], at('2026-12-05T12:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-06T06:00:00Z'),
    })
  })

  it('bad input names the field and what would be right', () => {
    const bad = (fn: () => unknown) => {
      try {
        fn()
      } catch (error) {
        expect(error).toBeInstanceOf(InputError)
        return (error as Error).message
      }
      throw new Error('accepted')
    }
    expect(bad(() => parseWindowFlag('--window', 'Mon 02:00-05:00 Mars/Olympus'))).toMatch(
      /^--window: time zone "Mars\/Olympus" does not exist; use an IANA name/,
    )
    expect(bad(() => parseWindowFlag('--window', 'Funday 02:00-05:00'))).toMatch(/"Funday" is not a day of the week/)
    expect(bad(() => parseWindowFlag('--window', '25:00-05:00'))).toMatch(/start "25:00" is not a time of day/)
    expect(bad(() => parseWindowFlag('--window', 'at night'))).toMatch(/is not a window; use e.g./)
    expect(bad(() => parseWindow('window[0]', { start: '02:00', end: '02:00' }))).toMatch(
      /^window\[0\]: start and end are both 02:00/,
    )
  })

  it('reads days as lists and ranges (wrapping the week), and says a window back as a flag takes it', () => {
    expect(parseWindowFlag('--window', 'Sat..Mon 1:00-2:00 UTC').days).toEqual(['Sat', 'Sun', 'Mon'])
    expect(parseWindowFlag('--window', 'mon,wed 01:00-02:00').days).toEqual(['Mon', 'Wed'])
    expect(describeWindow(berlin)).toBe('Mon,Tue,Wed,Thu,Fri 02:00-05:00 Europe/Berlin')
    expect(untilText(at('2026-12-04T00:00:00Z'), at('2026-12-04T03:12:00Z'))).toBe('3h12m')
  })
})

describe('a run with maintenance windows', () => {
  it('the next wave waits for the window (status shows it on the run record); the wave in progress is never cut', async () => {
    const s = await scenario({ nodes: 2 })
    const start = s.clock.now()
    // A one-hour window that opens three hours from now, every day, in UTC.
    const window = windowAfter(start, 3 * 3_600_000, 4 * 3_600_000)
    const seen: (string | undefined)[] = []
    s.clock.setTimer(3_600_000, () => {
      void s.cluster.readRun(RELEASE.namespace, RELEASE.name).then((r) => seen.push(r?.waitingForWindow?.opensAt))
    })
    const report = await upgrade(s.deps, s.upgradeRequest({ windows: [window] }), 'run-1')
    expect(report.outcome).toBe('success')
    const opens = new Date(start.getTime() + 3 * 3_600_000)
    opens.setUTCSeconds(0, 0)
    // Wave 1 waited for the window too (it opened after the run started), then each wave started inside it.
    const first = statusWrites(s.cluster, 'node-1').find((w) => w.status === 'cordoned')!.at
    expect(first).toBeGreaterThanOrEqual(opens.getTime() - start.getTime())
    expect(seen).toEqual([opens.toISOString()])
    expect(s.events.ofType('info').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/^wave 1 waits for a maintenance window \(.* UTC\): it opens in 3h0m, at /),
    )
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.waitingForWindow).toBeUndefined()
  })
})

describe('--dry-run and a window', () => {
  it('says what would gate the run now: a closed window and how long wave 1 would wait, or an open one', async () => {
    const s = await scenario({ nodes: 1 })
    const start = s.clock.now()
    const later = windowAfter(start, 2 * 3_600_000, 3 * 3_600_000)
    const closed = await upgrade(s.deps, s.upgradeRequest({ windows: [later], dryRun: true }), 'run-1')
    expect(closed.nextSteps[0]).toMatch(
      /^maintenance window \(\d\d:\d\d-\d\d:\d\d UTC\): closed now, wave 1 would wait 2h0m \(opens at /,
    )
    const now = windowAfter(start, -3_600_000, 3_600_000)
    const open = await upgrade(s.deps, s.upgradeRequest({ windows: [now], dryRun: true }), 'run-2')
    expect(open.nextSteps[0]).toMatch(/: open now, wave 1 would start at once$/)
    expect(s.cluster.writes.filter((w) => w.resource !== 'selfsubjectaccessreviews')).toEqual([])
  })
})

describe('the Argo steps and a window', () => {
  it('step window gives the seconds to the opening and records the wait; inside the window 0 and the record cleared', async () => {
    const s = await scenario({ nodes: 2 })
    const start = s.clock.now()
    const window = windowAfter(start, 3_600_000, 2 * 3_600_000)
    await planStep(s.deps, s.upgradeRequest({ windows: [window], batchSize: 1 }), 'run-1', WF)
    const opens = new Date(start.getTime() + 3_600_000)
    opens.setUTCSeconds(0, 0)
    expect(await windowStep(s.deps, RELEASE, 1, WF)).toBe((opens.getTime() - start.getTime()) / 1000)
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.waitingForWindow).toEqual({
      wave: 1,
      opensAt: opens.toISOString(),
    })
    // The template's suspend: time passes with no pod; then the window is open.
    await s.clock.advance(opens.getTime() - start.getTime())
    expect(await windowStep(s.deps, RELEASE, 1, WF)).toBe(0)
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.waitingForWindow).toBeUndefined()
  })

  it('a suspend cut short (argo resume): the prepare step still starts the wave only inside the window', async () => {
    const s = await scenario({ nodes: 1 })
    const start = s.clock.now()
    const window = windowAfter(start, 2 * 3_600_000, 3 * 3_600_000)
    await planStep(s.deps, s.upgradeRequest({ windows: [window] }), 'run-1', WF)
    expect(await windowStep(s.deps, RELEASE, 1, WF)).toBeGreaterThan(3600)
    await waveStep(s.deps, RELEASE, 1, 'prepare', WF)
    const cordoned = statusWrites(s.cluster, 'node-1').find((w) => w.status === 'cordoned')!.at
    expect(cordoned).toBeGreaterThanOrEqual(2 * 3_600_000 - 60_000)
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.waitingForWindow).toBeUndefined()
  })

  it("install-workflow renders the policy's windows into one parameter that step plan parses back", () => {
    const policy = parsePolicy(
      'apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\nwindows:\n  - {days: Mon-Fri, start: "02:00", end: "05:00", timeZone: Europe/Berlin}\n  - {start: "22:00", end: "01:00"}\n',
      'p.yaml',
    )
    const text = chartDefaults(policy)?.['windows'] as string
    expect(text).toBe('Mon,Tue,Wed,Thu,Fri 02:00-05:00 Europe/Berlin; 22:00-01:00 UTC')
    expect(parseWindowList('--windows', text)).toEqual(policyWindows({ origin: 'p', policy }))
    expect(parseWindowList('--windows', '')).toEqual([])
  })
})

describe('where a run takes its windows from', () => {
  it('--window, repeatable, else the policy: each checked naming the flag or the policy item', () => {
    const flags = { window: ['Mon-Fri 02:00-05:00 Europe/Berlin', '22:00-23:00'] }
    expect(
      upgradeRequestFrom({ ...BASE_FLAGS, ...flags }, { source: 'x', origin: 'x' }).windows?.map(describeWindow),
    ).toEqual(['Mon,Tue,Wed,Thu,Fri 02:00-05:00 Europe/Berlin', '22:00-23:00 UTC'])
    expect(upgradeRequestFrom(BASE_FLAGS, { source: 'x', origin: 'x' }).windows).toBeUndefined()
    const source = {
      origin: 'policy file p.yaml',
      policy: parsePolicy(
        'apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\nwindows:\n  - {days: Sat, start: "01:00", end: "03:00", timeZone: Asia/Tokyo}\n',
        'p.yaml',
      ),
    }
    expect(policyWindows(source)?.map(describeWindow)).toEqual(['Sat 01:00-03:00 Asia/Tokyo'])
    expect(() =>
      policyWindows({
        ...source,
        policy: { ...source.policy, windows: [{ start: '01:00', end: '03:00', timeZone: 'Nowhere/Land' }] },
      }),
    ).toThrow(/^policy file p\.yaml: windows\[0\]: time zone "Nowhere\/Land" does not exist/)
  })
})
