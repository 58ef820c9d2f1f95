/**
 * kata-lcm's client-side pacing of its API requests without flags (the `--kube-*` settings' help
 * names them; the kube adapter's limiter starts and caps there). Pure data.
 */
export interface ClientLimits {
  qps: number
  burst: number
  maxInFlight: number
}

/**
 * Where the limits start without flags: the rate and burst kubectl gives its discovery client, which
 * sends its requests in one burst as a wave does (client-go's own default is 5/10). They started at
 * 20/40 until the bench showed the first wave's cordons paced at 20 a second behind the
 * plan's reads, holding its helm upgrade back about 2.5 s (docs/performance.md, run S).
 */
export const DEFAULT_LIMITS: ClientLimits = { qps: 50, burst: 300, maxInFlight: 16 }
/** How far they may grow without flags: what the 5000-node benchmark ran with, every lease kept. */
export const DEFAULT_CAPS: ClientLimits = { qps: 400, burst: 800, maxInFlight: 64 }
