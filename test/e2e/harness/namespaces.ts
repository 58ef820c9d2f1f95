// Test namespaces: created ready for pods (the default ServiceAccount exists,
// pods are rejected before), deleted and waited for.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node'

import { waitForDeletion, waitForObject } from './wait.js'

function statusCode(e: unknown): number | undefined {
  const err = e as { code?: unknown }
  return typeof err.code === 'number' ? err.code : undefined
}

/** Create `name` (labels optional) and wait for its default ServiceAccount. */
export async function createNamespace(
  kc: KubeConfig,
  name: string,
  labels: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name, labels } } })
  await waitForObject(
    kc,
    `/api/v1/namespaces/${name}/serviceaccounts`,
    'default',
    () => true,
    timeoutMs,
    `${name}/default ServiceAccount`,
  )
}

/**
 * Delete `name` and wait until it is gone (~5s: the namespace controller).
 * Delete a test's namespaces BEFORE its nodes (or use deleteNodes, which
 * force-deletes pods left on deleted nodes).
 */
export async function deleteNamespace(kc: KubeConfig, name: string, timeoutMs = 120_000): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api)
  try {
    await core.deleteNamespace({ name })
  } catch (e) {
    if (statusCode(e) !== 404) throw e
  }
  await waitForDeletion(kc, '/api/v1/namespaces', name, timeoutMs)
}
