/** The Alerts port over Prometheus' HTTP API (`GET /api/v1/alerts`), with Node's fetch. */
import type { Alerts, FiringAlert } from '../ports/alerts.port.js'

/** One question must not hold a run longer than this: no answer is an unreachable Prometheus. */
const REQUEST_TIMEOUT_MS = 10_000

export class PrometheusAlerts implements Alerts {
  async firing(url: string): Promise<FiringAlert[]> {
    const endpoint = `${url.replace(/\/+$/, '')}/api/v1/alerts`
    let response: Response
    try {
      response = await fetch(endpoint, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        headers: { Accept: 'application/json' },
      })
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      throw new Error(`${endpoint}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, { cause: error })
    }
    if (!response.ok) throw new Error(`${endpoint}: HTTP ${response.status} ${response.statusText}`)
    const body = (await response.json().catch(() => undefined)) as
      { status?: string; data?: { alerts?: { labels?: Record<string, string>; state?: string }[] } } | undefined
    if (body?.status !== 'success' || !Array.isArray(body.data?.alerts))
      throw new Error(`${endpoint}: not a Prometheus alerts answer`)
    return body.data.alerts.filter((a) => a.state === 'firing').map((a) => ({ labels: a.labels ?? {} }))
  }
}
