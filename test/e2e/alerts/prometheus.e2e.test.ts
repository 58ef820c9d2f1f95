// The alert gate's test bed: harness/prometheus.ts against the real Prometheus binary
// (scripts/testbed/build-tools.sh prometheus). An alert fires and clears as the test says, with
// its labels, on Prometheus' own `GET /api/v1/alerts`; the "Prometheus is down" URL refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  CONDITION_METRIC,
  prometheusAlerts,
  startPrometheus,
  type TestPrometheus,
  unreachablePrometheusUrl,
} from '../harness/prometheus.js'

describe('test bed: a real Prometheus whose alert the test fires and clears', () => {
  let prom: TestPrometheus

  beforeAll(async () => {
    prom = await startPrometheus({ alertName: 'KataLcmE2eGate', labels: { team: 'kata-lcm', scope: 'e2e' } })
  })

  afterAll(async () => {
    await prom?.stop()
  })

  it('starts with no alerts, scraping the test target', async () => {
    expect(prom.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(await prometheusAlerts(prom.url)).toEqual([])
    // The target is scraped: the gauge is in the TSDB (at 0) within a few scrapes.
    const deadline = Date.now() + 15_000
    let result: unknown[] = []
    while (Date.now() < deadline) {
      const res = await fetch(`${prom.url}/api/v1/query?query=${CONDITION_METRIC}`)
      const body = (await res.json()) as { data: { result: { value: [number, string] }[] } }
      result = body.data.result
      if (result.length > 0) break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(result).toEqual([expect.objectContaining({ value: [expect.any(Number), '0'] })])
    // The rule is loaded and inactive.
    const rules = (await (await fetch(`${prom.url}/api/v1/rules?type=alert`)).json()) as {
      data: { groups: { rules: { name: string; state: string }[] }[] }
    }
    expect(rules.data.groups.flatMap((g) => g.rules)).toEqual([
      expect.objectContaining({ name: 'KataLcmE2eGate', state: 'inactive' }),
    ])
  })

  it('fire(): /api/v1/alerts shows the alert firing with its labels', async () => {
    prom.fire()
    await prom.waitForAlert('firing')
    const alerts = await prometheusAlerts(prom.url)
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({
      state: 'firing',
      labels: {
        alertname: 'KataLcmE2eGate',
        severity: 'critical',
        team: 'kata-lcm',
        scope: 'e2e',
        job: 'kata-lcm-test',
      },
    })
    expect(alerts[0]!.labels).not.toHaveProperty('__name__')
    expect(alerts[0]!.labels['instance']).toMatch(/^127\.0\.0\.1:\d+$/)
  })

  it('clear(): the alert is gone; fire() again brings it back', async () => {
    prom.clear()
    await prom.waitForAlert('none')
    expect(await prometheusAlerts(prom.url)).toEqual([])
    prom.fire()
    await prom.waitForAlert('firing')
    prom.clear()
    await prom.waitForAlert('none')
  })

  it('waitForAlert times out with what it last saw', async () => {
    await expect(prom.waitForAlert('firing', 1_500)).rejects.toThrow(/KataLcmE2eGate not firing within 1500 ms/)
  })

  it('unreachablePrometheusUrl(): nothing listens there', async () => {
    const url = await unreachablePrometheusUrl()
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const err = await fetch(`${url}/api/v1/alerts`).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(TypeError)
    expect(((err as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
  })

  it('stop() ends Prometheus and the target: the URL refuses afterwards', async () => {
    const other = await startPrometheus()
    expect(other.alertName).toBe('KataLcmTestAlert')
    expect(await prometheusAlerts(other.url)).toEqual([])
    await other.stop()
    await other.stop() // idempotent
    await expect(prometheusAlerts(other.url)).rejects.toThrow()
  })
})
