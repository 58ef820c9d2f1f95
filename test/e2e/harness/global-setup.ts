// vitest globalSetup of the e2e project: builds the testbed tools (idempotent,
// cached outside the repo), creates ONE kwok cluster for the whole run, hands
// it to the tests, and deletes it at the end (also when tests failed).
//
// The tests get the cluster through env vars (KATA_LCM_E2E_KUBECONFIG,
// KATA_LCM_E2E_AUDIT_LOG, KATA_LCM_E2E_CLUSTER; see cluster.ts e2eCluster())
// or inject('kataLcmE2e'). PATH gets the tools dir first (kubectl, helm, argo).
//
// Knobs:
//   KATA_LCM_E2E_KUBECONFIG + KATA_LCM_E2E_AUDIT_LOG set beforehand: use that
//     cluster as is (nothing is built, created or deleted).
//   KATA_LCM_E2E_KEEP=1: keep the cluster after the run (prints how to delete it).
//   KATA_LCM_E2E_SKIP_BUILD=1: do not run build-tools.sh.
import type { TestProject } from 'vitest/node'

import {
  buildTools,
  ENV_AUDIT_LOG,
  ENV_CLUSTER_NAME,
  ENV_KUBECONFIG,
  envWithTools,
  startCluster,
  type TestCluster,
} from './cluster.js'

export interface KataLcmE2eContext {
  name: string
  kubeconfigPath: string
  auditLogPath: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    kataLcmE2e: KataLcmE2eContext
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env['PATH'] = envWithTools()['PATH']

  const given = process.env[ENV_KUBECONFIG]
  const givenAudit = process.env[ENV_AUDIT_LOG]
  if (given && givenAudit) {
    console.error(`[e2e] using the given cluster ${given} (audit log ${givenAudit})`)
    project.provide('kataLcmE2e', {
      name: process.env[ENV_CLUSTER_NAME] ?? '',
      kubeconfigPath: given,
      auditLogPath: givenAudit,
    })
    return async () => {}
  }

  const t0 = Date.now()
  if (process.env['KATA_LCM_E2E_SKIP_BUILD'] !== '1') await buildTools()
  const t1 = Date.now()
  const cluster: TestCluster = await startCluster()
  console.error(
    `[e2e] cluster ${cluster.name} up (tools ${Math.round((t1 - t0) / 1000)}s, cluster ${Math.round((Date.now() - t1) / 1000)}s)\n` +
      `[e2e]   KUBECONFIG=${cluster.kubeconfigPath}\n[e2e]   audit log ${cluster.auditLogPath}\n[e2e]   logs ${cluster.workdir}/logs`,
  )
  process.env[ENV_KUBECONFIG] = cluster.kubeconfigPath
  process.env[ENV_AUDIT_LOG] = cluster.auditLogPath
  process.env[ENV_CLUSTER_NAME] = cluster.name
  project.provide('kataLcmE2e', {
    name: cluster.name,
    kubeconfigPath: cluster.kubeconfigPath,
    auditLogPath: cluster.auditLogPath,
  })

  // Delete the cluster even if vitest is interrupted.
  const onSignal = (sig: NodeJS.Signals) => {
    void cluster.stop().finally(() => process.kill(process.pid, sig))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  return async () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (process.env['KATA_LCM_E2E_KEEP'] === '1') {
      console.error(`[e2e] keeping cluster ${cluster.name}: scripts/testbed/cluster.sh delete ${cluster.name}`)
      return
    }
    await cluster.stop()
  }
}
