import type { AccessCheck } from '../../ports/cluster.port.js'
import type { LifecycleDeps } from '../context.js'
import { PreconditionError } from '../errors.js'
import type { DeploymentStrategy } from '../modes/strategy.js'
import type { UpgradeRequest } from '../settings/request.js'

/**
 * What every run does whatever its mode: nodes, the verification pods, the record and the lease, helm's
 * storage, the policy ConfigMap it read. Pure.
 */
export function runAccess(request: UpgradeRequest): AccessCheck[] {
  const verify = request.verification.namespace
  const release = request.release.namespace
  return [
    ...['list', 'get', 'patch'].map((verb) => ({ verb, resource: 'nodes' })),
    // A soak watches its nodes.
    ...(request.soakMs ? [{ verb: 'watch', resource: 'nodes' }] : []),
    ...['create', 'get', 'list', 'watch', 'delete'].map((verb) => ({ verb, resource: 'pods', namespace: verify })),
    { verb: 'get', resource: 'pods/log', namespace: verify },
    // The run record (a Secret) and helm's release storage (Secrets) beside the release.
    ...['get', 'list', 'watch', 'create', 'update', 'delete'].map((verb) => ({
      verb,
      resource: 'secrets',
      namespace: release,
    })),
    ...['get', 'create', 'update', 'delete'].map((verb) => ({
      verb,
      resource: 'leases.coordination.k8s.io',
      namespace: release,
    })),
    // The fleet policy's ConfigMap, read before everything else (none with --no-policy or --policy FILE).
    ...(request.policy.namespace ? [{ verb: 'get', resource: 'configmaps', namespace: request.policy.namespace }] : []),
    // The Kata pods on each node, recorded before its upgrade and compared after (workloads.ts); drain's too.
    { verb: 'list', resource: 'pods' },
    { verb: 'list', resource: 'runtimeclasses.node.k8s.io' },
    ...(request.drain ? [{ verb: 'create', resource: 'pods/eviction' }] : []),
  ]
}

const describe = (c: AccessCheck) => `${c.verb} ${c.resource}${c.namespace ? ` in ${c.namespace}` : ' (cluster-wide)'}`

/**
 * Asks the API server (SelfSubjectAccessReview) whether this identity may do everything the run
 * will do, and whether the verification namespace exists, before the first write. Throws a
 * PreconditionError (exit 2) naming each missing right and the RBAC rule that grants it. Read-only.
 */
export async function checkAccess(
  deps: LifecycleDeps,
  request: UpgradeRequest,
  strategy?: DeploymentStrategy,
): Promise<void> {
  const checks = strategy ? strategy.requiredAccess(request.release.namespace) : runAccess(request)
  const denied = await deps.cluster.deniedAccess(checks)
  if (denied.length > 0) {
    const rules = denied.map((c) => {
      const [resource, ...group] = c.resource.split('.')
      return `{apiGroups: ["${group.join('.')}"], resources: [${resource}], verbs: [${c.verb}]}${c.namespace ? ` in a Role in ${c.namespace}` : ' in a ClusterRole'}`
    })
    throw new PreconditionError(
      `this identity may not ${denied.map(describe).join(', ')}; kata-lcm needs all of it before it touches a node`,
      {
        suggestions: [
          `grant it with RBAC rules like ${[...new Set(rules)].slice(0, 4).join('; ')}`,
          'kubectl auth can-i --list (-n NAMESPACE) shows what this identity may do',
        ],
      },
    )
  }
  if (!strategy && !(await deps.cluster.namespaceExists(request.verification.namespace))) {
    throw new PreconditionError(
      `--verification-namespace: namespace "${request.verification.namespace}" does not exist; create it (kubectl create namespace ${request.verification.namespace}) or name one that does`,
    )
  }
}
