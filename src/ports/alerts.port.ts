/** The alerts a monitoring system says fire now: the alert gate's one question. */
export interface FiringAlert {
  labels: Record<string, string>
}

/** A run's alert gate, as recorded: the Prometheus API, the label matchers, how long a hold may last. */
export interface AlertGate {
  url: string
  /** Prometheus label matchers, comma-separated (`severity="critical"`); empty: every firing alert. */
  match: string
  timeoutMs: number
}

export interface Alerts {
  /**
   * The alerts firing now at the Prometheus API `url` (`GET <url>/api/v1/alerts`, state `firing`;
   * pending ones are not firing yet). Rejects when it cannot be asked or does not answer one.
   */
  firing(url: string): Promise<FiringAlert[]>
}
