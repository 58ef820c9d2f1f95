/**
 * A release as helm says it, read from helm's own storage where it can be (one list of the
 * release's revision Secrets), from a helm process where not. Shared by the planner, `rollback
 * NODE`, `status` and the modes (which must not import the checks: they import the modes).
 */
import type { StoredRelease } from '../../ports/cluster.port.js'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'

/**
 * The release as helm says it (`helm get metadata`): read from helm's storage Secret (one list of the
 * release's revisions), else (another storage driver, or no such Secret) from helm. Undefined when
 * the release does not exist. Read-only.
 */
export async function readRelease(deps: LifecycleDeps, ref: ReleaseRef): Promise<ReleaseInfo | undefined> {
  return fromStorageOrHelm(deps.cluster.helmStoredRelease(ref.namespace, ref.name), deps, ref).release()
}

/**
 * The release and its install (helm's first_deployed) from one read of helm's storage (`stored`),
 * each from helm where the storage holds none: a reader that needs both reads the storage once. The
 * install from helm is `helm status`, which on helm 4 also lists every pod of the release (12.8 s at
 * 5000 nodes: docs/performance.md, run O).
 */
export function fromStorageOrHelm(
  stored: Promise<StoredRelease | undefined>,
  deps: LifecycleDeps,
  ref: ReleaseRef,
): { release: () => Promise<ReleaseInfo | undefined>; instance: () => Promise<string | undefined> } {
  return {
    release: async () => (await stored)?.release ?? deps.helm.release(ref.name, ref.namespace),
    instance: async () => (await stored)?.firstDeployed ?? deps.helm.firstDeployed(ref.name, ref.namespace),
  }
}
