import { describe, expect, it } from 'vitest'
import { ALERT_POLL_MS, AlertHoldTimeoutError, matches, parseMatchers } from '../../../src/lifecycle/gates/alerts.js'
import { ExitCode, InputError } from '../../../src/lifecycle/errors.js'
import { alertsStep, planStep, waveStep } from '../../../src/lifecycle/services/steps.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { RELEASE, scenario, type Scenario } from '../../fakes/scenario.js'

const CRITICAL = { labels: { alertname: 'KataNodeDown', severity: 'critical', node: 'node-9' } }
const gate = (over: Partial<{ match: string; timeoutMs: number }> = {}) => ({
  alerts: { url: 'http://prometheus:9090', match: 'severity="critical"', timeoutMs: 600_000, ...over },
})

describe('alert matchers, as Prometheus writes them', () => {
  it('parses =, !=, =~ and !~, values quoted or not; empty is every alert', () => {
    expect(parseMatchers('--alert-match', 'severity="critical", alertname=~"Kata.*",team!=db,env!~dev|test')).toEqual([
      { name: 'severity', op: '=', value: 'critical' },
      { name: 'alertname', op: '=~', value: 'Kata.*' },
      { name: 'team', op: '!=', value: 'db' },
      { name: 'env', op: '!~', value: 'dev|test' },
    ])
    expect(parseMatchers('--alert-match', '')).toEqual([])
  })

  it('refuses what is not a matcher, naming the flag', () => {
    expect(() => parseMatchers('--alert-match', 'severity')).toThrow(InputError)
    expect(() => parseMatchers('--alert-match', 'severity')).toThrow(
      /--alert-match: "severity" is not a list of label matchers/,
    )
    expect(() => parseMatchers('alerts.match', 'a=~"("')).toThrow(
      /alerts.match: a=~"\(": the regular expression does not compile/,
    )
  })

  it('a regex matches the whole value; a missing label is empty', () => {
    const labels = CRITICAL.labels
    expect(matches(labels, parseMatchers('m', 'alertname=~"Kata.*",severity="critical"'))).toBe(true)
    expect(matches(labels, parseMatchers('m', 'alertname=~"Kata"'))).toBe(false)
    expect(matches(labels, parseMatchers('m', 'team=""'))).toBe(true)
    expect(matches(labels, parseMatchers('m', 'node!~"node-[0-9]"'))).toBe(false)
  })
})

const messages = (s: Scenario) => s.events.events.flatMap((e) => ('message' in e ? [e.message] : []))

/** Two nodes, one per wave. */
const fleet = () => scenario({ nodes: 2 })

describe('the alert gate, in one process (the CLI)', () => {
  it('a matching alert firing before wave 2 holds it; status-worthy record; when it clears, wave 2 runs', async () => {
    const s = await fleet()
    // The alert fires once node-1 completed (before wave 2), for three questions.
    let held = 0
    const holds: unknown[] = []
    const firing = s.alerts.firing.bind(s.alerts)
    s.alerts.firing = async (url) => {
      s.alerts.firingNow = s.status('node-1') === 'completed' && held++ < 3 ? [CRITICAL] : []
      const record = await s.cluster.readRun(RELEASE.namespace, RELEASE.name)
      if (record?.heldByAlerts) holds.push(record.heldByAlerts)
      return firing(url)
    }
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1, ...gate() }), 'run-1')
    expect(report.outcome).toBe('success')
    expect(s.status('node-2')).toBe('completed')
    // Asked before wave 1 (clear), before wave 2 (held, held, held), then clear.
    expect(s.alerts.asked.length).toBe(5)
    const [, firstHeld, , , cleared5] = s.alerts.asked
    expect(cleared5!.at.getTime() - firstHeld!.at.getTime()).toBe(3 * ALERT_POLL_MS)
    expect(holds[0]).toMatchObject({
      wave: 2,
      reason: expect.stringContaining('KataNodeDown{node="node-9",severity="critical"}'),
    })
    expect(messages(s)).toContainEqual(
      expect.stringMatching(/^wave 2 is held: 1 alert\(s\) firing that match severity="critical"/),
    )
    // The hold is off the record once it cleared.
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.heldByAlerts).toBeUndefined()
  })

  it('an alert that does not match holds nothing', async () => {
    const s = await fleet()
    s.alerts.firingNow = [{ labels: { alertname: 'Watchdog', severity: 'none' } }]
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1, ...gate() }), 'run-1')
    expect(report.outcome).toBe('success')
    expect(s.alerts.asked.length).toBe(2)
  })

  it('a Prometheus that does not answer holds; past the timeout the run stops (exit 3) before the wave, nothing touched', async () => {
    const s = await fleet()
    s.alerts.unreachable = 'connect ECONNREFUSED 127.0.0.1:9090'
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1, ...gate({ timeoutMs: 40_000 }) }), 'run-1')
    expect(report.outcome).toBe('held-by-alerts')
    expect(report.summary).toMatch(
      /^stopped: firing alerts held the next wave for longer than the alert timeout; 0 node\(s\) on 3.29.0, 2 not touched/,
    )
    expect(s.status('node-1')).toBeUndefined()
    expect(messages(s)).toContainEqual(
      expect.stringMatching(/wave 1 is held: Prometheus cannot be asked \(connect ECONNREFUSED/),
    )
    // Asked at 0, 15 s, 30 s and at the timeout (40 s).
    expect(s.alerts.asked.map((a) => a.at.getTime() - s.alerts.asked[0]!.at.getTime())).toEqual([
      0, 15_000, 30_000, 40_000,
    ])
    // Resumable: the record stays, without the hold; a rerun with Prometheus back goes on.
    const record = await s.cluster.readRun(RELEASE.namespace, RELEASE.name)
    expect(record?.runId).toBe('run-1')
    expect(record?.heldByAlerts).toBeUndefined()
    s.alerts.unreachable = undefined
    const again = await upgrade(s.deps, s.upgradeRequest({ batchSize: 1, ...gate() }), 'run-2')
    expect(again.outcome).toBe('success')
  })
})

describe('the alert gate in a dry run', () => {
  it('says what Prometheus answers now, and writes nothing', async () => {
    const s = await fleet()
    s.alerts.firingNow = [CRITICAL]
    const held = await upgrade(s.deps, s.upgradeRequest({ dryRun: true, ...gate() }), 'run-1')
    expect(held.nextSteps).toContainEqual(
      expect.stringMatching(
        /^alert gate \(http:\/\/prometheus:9090\): HELD now, wave 1 would wait: 1 alert\(s\) firing that match severity="critical": KataNodeDown/,
      ),
    )
    s.alerts.firingNow = []
    const clear = await upgrade(s.deps, s.upgradeRequest({ dryRun: true, ...gate() }), 'run-2')
    expect(clear.nextSteps).toContain(
      'alert gate (http://prometheus:9090): clear now (no firing alert matches severity="critical")',
    )
    expect(s.cluster.writes).toEqual([])
  })
})

describe('the alert gate, as the Argo step (step alerts)', () => {
  async function planned(s: Scenario, timeoutMs: number) {
    await planStep(s.deps, { ...s.upgradeRequest({ batchSize: 1, ...gate({ timeoutMs }) }) }, 'run-1', 'wf')
  }

  it('held: recorded, asked again by the template; clear: the hold is off; past the timeout: the run stops (exit 3)', async () => {
    const s = await fleet()
    await planned(s, 60_000)
    s.alerts.firingNow = [CRITICAL]
    expect(await alertsStep(s.deps, RELEASE, 1, 'wf')).toMatchObject({
      held: true,
      reason: expect.stringContaining('KataNodeDown'),
    })
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.heldByAlerts).toMatchObject({ wave: 1 })
    s.alerts.firingNow = []
    expect(await alertsStep(s.deps, RELEASE, 1, 'wf')).toEqual({ held: false })
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.heldByAlerts).toBeUndefined()
    for (const step of ['prepare', 'upgrade', 'verify', 'rollback'] as const)
      await waveStep(s.deps, RELEASE, 1, step, 'wf')

    s.alerts.firingNow = [CRITICAL]
    expect((await alertsStep(s.deps, RELEASE, 2, 'wf')).held).toBe(true)
    await s.clock.sleep(60_000)
    const stopped = await alertsStep(s.deps, RELEASE, 2, 'wf').catch((e: unknown) => e)
    expect(stopped).toBeInstanceOf(AlertHoldTimeoutError)
    expect((stopped as AlertHoldTimeoutError).exitCode).toBe(ExitCode.RolledBack)
    await expect(waveStep(s.deps, RELEASE, 2, 'prepare', 'wf')).rejects.toThrow(
      /the run stopped after wave 2: wave 2 was held by alerts/,
    )
    expect(s.status('node-2')).toBeUndefined()
  })
})

describe('the alert gate, with overlapping waves (step wave --wait-turn): asked by the wave pod itself', () => {
  it('held: the pod holds until it clears, then runs the wave; past the timeout: the run stops (exit 3), nothing touched', async () => {
    const s = await fleet()
    await planStep(s.deps, s.upgradeRequest({ batchSize: 1, ...gate({ timeoutMs: 60_000 }) }), 'run-1', 'wf')
    s.alerts.firingNow = [CRITICAL]
    const firing = s.alerts.firing.bind(s.alerts)
    let asked = 0
    s.alerts.firing = async (url) => {
      if (++asked === 3) s.alerts.firingNow = []
      return firing(url)
    }
    expect((await waveStep(s.deps, RELEASE, 1, 'wave', 'wf', { overlap: true })).nodes).toEqual({
      'node-1': 'completed',
    })
    expect(asked).toBe(3)
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.heldByAlerts).toBeUndefined()

    s.alerts.firing = firing
    s.alerts.firingNow = [CRITICAL]
    const stopped = await waveStep(s.deps, RELEASE, 2, 'wave', 'wf', { overlap: true }).catch((e: unknown) => e)
    expect(stopped).toBeInstanceOf(AlertHoldTimeoutError)
    expect((stopped as AlertHoldTimeoutError).exitCode).toBe(ExitCode.RolledBack)
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.stoppedBy).toMatch(/wave 2 was held by alerts/)
    expect(s.status('node-2')).toBeUndefined()
  })
})

describe("the alert gate, with several waves in one pod (step wave --pod, the chart's wavesPerPod): asked by the pod before each wave", () => {
  it('alerts that start firing during wave 1 hold wave 2 in the pod; past the timeout the run stops (exit 3), wave 2 untouched', async () => {
    const s = await fleet()
    await planStep(s.deps, s.upgradeRequest({ batchSize: 1, ...gate({ timeoutMs: 60_000 }) }), 'run-1', 'wf')
    void s.cluster
      .afterWrite(
        (w) => w.resource === 'nodes' && w.node === 'node-1' && JSON.stringify(w.detail).includes('"completed"'),
      )
      .then(() => (s.alerts.firingNow = [CRITICAL]))
    const stopped = await waveStep(s.deps, RELEASE, 1, 'wave', 'wf', { through: 2 }).catch((e: unknown) => e)
    expect(stopped).toBeInstanceOf(AlertHoldTimeoutError)
    expect(s.status('node-1')).toBe('completed')
    expect((await s.cluster.readRun(RELEASE.namespace, RELEASE.name))?.stoppedBy).toMatch(/wave 2 was held by alerts/)
    expect(s.status('node-2')).toBeUndefined()
  })
})
