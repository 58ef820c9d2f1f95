import type { AccessCheck } from '../../ports/cluster.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { PreconditionError } from '../errors.js'

/** What a run will touch, whatever its mode: the planner's and `rollback NODE`'s alike. */
export interface RunReach {
  release: ReleaseRef
  /** Where its verification pods run; none when no node is verified. */
  verificationNamespace?: string
  /** The namespace of the fleet policy's ConfigMap, when the run read it. */
  policyNamespace?: string
  /** A soak watches its nodes. */
  soak: boolean
  drain: boolean
}

/**
 * What every run does whatever its mode: nodes, the verification pods, the record and the lease, helm's
 * storage, the policy ConfigMap it read. The mode's own rights come from its strategy
 * (`requiredAccess`), asked once the mode is known. Pure.
 */
export function runAccess(reach: RunReach): AccessCheck[] {
  const verify = reach.verificationNamespace
  const release = reach.release.namespace
  return [
    ...['list', 'get', 'patch'].map((verb) => ({ verb, resource: 'nodes' })),
    ...(reach.soak ? [{ verb: 'watch', resource: 'nodes' }] : []),
    ...(verify
      ? [
          ...['create', 'get', 'list', 'watch', 'delete'].map((verb) => ({
            verb,
            resource: 'pods',
            namespace: verify,
          })),
          { verb: 'get', resource: 'pods/log', namespace: verify },
        ]
      : []),
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
    ...(reach.policyNamespace ? [{ verb: 'get', resource: 'configmaps', namespace: reach.policyNamespace }] : []),
    // The Kata pods on each node, recorded before its upgrade and compared after (workloads.ts); drain's too.
    { verb: 'list', resource: 'pods' },
    { verb: 'list', resource: 'runtimeclasses.node.k8s.io' },
    ...(reach.drain ? [{ verb: 'create', resource: 'pods/eviction' }] : []),
  ]
}

const describe = (c: AccessCheck) => `${c.verb} ${c.resource}${c.namespace ? ` in ${c.namespace}` : ' (cluster-wide)'}`

/**
 * Asks the API server (SelfSubjectAccessReview) whether this identity may do each of `checks`,
 * before the first write. Throws a PreconditionError (exit 2) naming each missing right and the RBAC
 * rule that grants it. Read-only.
 */
export async function checkAccess(deps: LifecycleDeps, checks: readonly AccessCheck[]): Promise<void> {
  const denied = await deps.cluster.deniedAccess(checks)
  if (denied.length === 0) return
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

/** The run's rights (`runAccess`), then its verification namespace: it must exist. Read-only. */
export async function checkRunAccess(deps: LifecycleDeps, reach: RunReach): Promise<void> {
  await checkAccess(deps, runAccess(reach))
  const namespace = reach.verificationNamespace
  if (namespace && !(await deps.cluster.namespaceExists(namespace))) {
    throw new PreconditionError(
      `--verification-namespace: namespace "${namespace}" does not exist; create it (kubectl create namespace ${namespace}) or name one that does`,
    )
  }
}
