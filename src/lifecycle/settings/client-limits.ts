/**
 * kata-lcm's client-side pacing of its API requests without flags (the `--kube-*` settings' help
 * names them; the kube adapter's limiter starts and caps there). Pure data.
 */
export interface ClientLimits {
  qps: number
  burst: number
  maxInFlight: number
}

/** Where the limits start without flags (kubectl's are 50/300; client-go's 5/10). */
export const DEFAULT_LIMITS: ClientLimits = { qps: 20, burst: 40, maxInFlight: 16 }
/** How far they may grow without flags: what the 5000-node benchmark ran with, every lease kept. */
export const DEFAULT_CAPS: ClientLimits = { qps: 400, burst: 800, maxInFlight: 64 }
