import type { Alerts, FiringAlert } from '../../src/ports/alerts.port.js'

/**
 * A Prometheus for the alert gate: the test sets what fires (or that it does not answer) and sees
 * every question asked, with the fake clock's time.
 */
export class FakeAlerts implements Alerts {
  firingNow: FiringAlert[] = []
  /** When set, every question fails with it (Prometheus down). */
  unreachable?: string
  readonly asked: { url: string; at: Date }[] = []

  constructor(private readonly now: () => Date) {}

  firing(url: string): Promise<FiringAlert[]> {
    this.asked.push({ url, at: this.now() })
    if (this.unreachable) return Promise.reject(new Error(this.unreachable))
    return Promise.resolve(structuredClone(this.firingNow))
  }
}
