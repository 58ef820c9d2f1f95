/**
 * The client-side request limits on the real API server: the audit log shows kata-lcm's requests
 * (its user agent) never above the burst plus the sustained rate in any one-second window.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { KubeCluster } from '../../../src/adapters/kube-cluster.adapter.js'
import { createKubeConfig } from '../../../src/adapters/kube-config.js'
import { DEFAULT_LIMITS } from '../../../src/deps.js'
import { AuditLog } from '../harness/audit.js'
import { e2eCluster, loadKubeConfig } from '../harness/cluster.js'

describe('client-side request limits (real API server)', () => {
  it('60 calls at --kube-qps 10 --kube-burst 5: the burst at once, then at most 10 a second', async () => {
    const agent = `kata-lcm-limits-e2e/${randomBytes(3).toString('hex')}`
    const cluster = new KubeCluster(createKubeConfig({ kubeconfig: e2eCluster().kubeconfigPath }), {
      userAgent: agent,
      limits: { qps: 10, burst: 5, maxInFlight: 4 },
    })
    const audit = new AuditLog(e2eCluster().auditLogPath)
    await Promise.all(Array.from({ length: 60 }, () => cluster.listNodes()))
    await audit.barrier(loadKubeConfig())
    const times = (await audit.events())
      .filter((e) => e.stage === 'ResponseComplete' && e.userAgent === agent && e.verb === 'list')
      .map((e) => Date.parse(e.requestReceivedTimestamp))
      .sort((a, b) => a - b)
    expect(times).toHaveLength(60)
    // The most requests received in any one second: the bucket (5) plus what it refills in that second (10).
    let most = 0
    for (const [i, t] of times.entries()) most = Math.max(most, times.filter((u, j) => j >= i && u < t + 1000).length)
    expect(most).toBeLessThanOrEqual(15)
    // 55 requests beyond the burst at 10 a second: at least 5.5 s from the first to the last.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(5_000)
  })

  it("an Argo step's process starts from the limits the holder's last process handed over on the Lease; another holder starts cold", async () => {
    const kubeConfig = createKubeConfig({ kubeconfig: e2eCluster().kubeconfigPath })
    const lease = `kata-lcm-limits-e2e-${randomBytes(3).toString('hex')}`
    // Where the built-in limits start without flags.
    const cold = DEFAULT_LIMITS
    // The step before: limits it reached (fixed here, as if its limiter had grown to them).
    const before = new KubeCluster(kubeConfig, { limits: { qps: 300, burst: 600, maxInFlight: 48 } })
    expect(await before.tryLock('default', lease, 'argo/wf-1', 60, new Date())).toEqual({ acquired: true })
    expect(await before.handOverLock('default', lease, 'argo/wf-1', new Date())).toBe(true)
    // The next step of the same workflow: the built-in adaptive limits, started where the last left them.
    const next = new KubeCluster(kubeConfig)
    expect(next.clientLimits()).toEqual(cold)
    expect(await next.tryLock('default', lease, 'argo/wf-1', 60, new Date())).toEqual({ acquired: true })
    expect(next.clientLimits()).toEqual({ qps: 300, burst: 600, maxInFlight: 48 })
    // Another workflow taking the lease once it expired learns nothing from it.
    const other = new KubeCluster(kubeConfig)
    const later = new Date(Date.now() + 120_000)
    expect(await other.tryLock('default', lease, 'argo/wf-2', 60, later)).toEqual({ acquired: true })
    expect(other.clientLimits()).toEqual(cold)
    await other.unlock('default', lease)
  })
})
