/**
 * Where the policy is looked for, `policy set`, and `init`'s starter policy from the cluster's Kata
 * RuntimeClasses.
 */
import { stringify } from 'yaml'
import type { PolicyStore } from '../../ports/cluster.port.js'
import { ClusterError, describeError, InputError, KataLcmError, PreconditionError } from '../errors.js'
import { poolsOf } from '../run/pools.js'
import {
  parsePolicy as parseDocument,
  POLICY_API_VERSION,
  POLICY_CONFIGMAP,
  type Policy,
  type PolicyInEffect,
  type PolicySource,
} from '../policy/policy.js'

/** A policy document, checked down to its pools' selectors and verification pods. */
function parsePolicy(text: string, origin: string): Policy {
  const policy = parseDocument(text, origin)
  if (policy.pools) poolsOf(policy.pools, origin)
  return policy
}

export interface PolicyLookup {
  /** `--policy FILE`, read by the command: used instead of the cluster's. */
  file?: { path: string; text: string }
  /** Where the cluster's policy ConfigMap lives (`--policy-namespace`). */
  namespace: string
  /** `--no-policy`: no policy at all, and the cluster is not asked for one. */
  off?: boolean
}

/** The policy in effect and every place that was looked at, in order (for the missing-pod error). */
export interface FoundPolicy {
  source?: PolicySource
  /** What the run's first line and its report name as the policy in effect. */
  inEffect: PolicyInEffect
  looked: string[]
  /**
   * Why the cluster could not be asked at all (no usable kubeconfig). Nothing can be written then
   * either: the command fails on this error where it first needs the cluster, after every check
   * that needs none.
   */
  noCluster?: unknown
}

/**
 * `--no-policy`: none; `--policy FILE` when given; else the cluster's ConfigMap, where only its
 * absence (404) means no policy. A ConfigMap the cluster will not hand over (403, 5xx, unreachable)
 * refuses the run (unreadablePolicy): a run never goes on with its flags alone while the fleet's
 * policy asks for pools, a cap, a soak or a drain. Read-only.
 */
export async function findPolicy(cluster: () => PolicyStore, lookup: PolicyLookup): Promise<FoundPolicy> {
  if (lookup.off) return { inEffect: { name: 'none (--no-policy)' }, looked: ['no policy (--no-policy)'] }
  if (lookup.file) {
    const origin = `policy file ${lookup.file.path}`
    return {
      source: { policy: parsePolicy(lookup.file.text, origin), origin },
      inEffect: { name: `file ${lookup.file.path}` },
      looked: [`--policy ${lookup.file.path}`],
    }
  }
  const { namespace } = lookup
  const where = `ConfigMap ${namespace}/${POLICY_CONFIGMAP}`
  let store: PolicyStore
  try {
    store = cluster()
  } catch (error) {
    return {
      inEffect: { name: `unknown (${where} not asked: ${describeError(error)})`, namespace },
      looked: [`${where} (not asked: ${describeError(error)})`],
      noCluster: error,
    }
  }
  let text: string | undefined
  try {
    text = await store.readPolicy(namespace)
  } catch (error) {
    throw unreadablePolicy(where, error)
  }
  if (text === undefined) return { inEffect: { name: `none (no ${where})`, namespace }, looked: [`${where} (none)`] }
  const origin = `policy ${where}`
  return {
    source: { policy: parsePolicy(text, origin), origin },
    inEffect: { name: where, namespace },
    looked: [where],
  }
}

/**
 * The refusal of a run whose policy ConfigMap (`where`) could not be read: exit 2 for a 403 (a
 * missing right, as the access review's), else the cluster's exit 7; both name the ConfigMap and the
 * error, and say how to run without it. Pure.
 */
export function unreadablePolicy(where: string, error: unknown): KataLcmError {
  const status = error instanceof ClusterError ? error.status : undefined
  const message = `cannot read the fleet policy, ${where}: ${describeError(error)}; a run does not go on without the fleet's policy`
  const suggestions = [
    ...(error instanceof KataLcmError ? error.suggestions : []),
    'to run on the flags and built-in defaults alone, give --no-policy; to use a policy file instead, --policy FILE',
  ]
  return status === 403
    ? new PreconditionError(message, { cause: error, suggestions })
    : new ClusterError(message, status, { cause: error, suggestions })
}

/** The error for a run with no verification pod anywhere: names every place looked at and how to set one. */
export function missingVerificationPod(looked: readonly string[]): InputError {
  return new InputError(
    '--verification-pod',
    `no verification pod: looked at the flag (not given), ${looked.join(', ')}; kata-lcm never leaves a node unverified`,
    {
      suggestions: [
        'give --verification-pod FILE (a Pod YAML; ${NODE} and ${TEST_POD} are substituted)',
        'or set verification.pod in the fleet policy: kata-lcm init writes a starter, kata-lcm policy set FILE stores it in the cluster',
      ],
    },
  )
}

/** `policy set FILE`: validated, then stored as written (comments kept). Returns the policy. */
export async function setPolicy(cluster: PolicyStore, namespace: string, text: string, path: string): Promise<Policy> {
  const policy = parsePolicy(text, `policy file ${path}`)
  await cluster.writePolicy(namespace, text)
  return policy
}

/** One Kata RuntimeClass per family (`kata-qemu` for kata-qemu, kata-qemu-tdx, ...), the shortest name first. Pure. */
export function kataFamilies(
  classes: readonly { name: string; handler: string }[],
): { family: string; name: string }[] {
  const byFamily = new Map<string, string>()
  for (const rc of [...classes].sort((a, b) => a.name.length - b.name.length || a.name.localeCompare(b.name))) {
    const match = /^kata-([a-z0-9]+)/.exec(rc.handler) ?? /^kata-([a-z0-9]+)/.exec(rc.name)
    if (match && !byFamily.has(match[1]!)) byFamily.set(match[1]!, rc.name)
  }
  return [...byFamily].map(([family, name]) => ({ family, name }))
}

/** A verification pod for one RuntimeClass: a Kata pod that must start and run to completion on ${NODE}. Pure. */
export function verificationPodFor(runtimeClass: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: '${TEST_POD}', labels: { 'app.kubernetes.io/name': 'kata-lcm-verify' } },
    spec: {
      runtimeClassName: runtimeClass,
      restartPolicy: 'Never',
      nodeSelector: { 'kubernetes.io/hostname': '${NODE}' },
      // kata-lcm cordons the node while it verifies it.
      tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }],
      containers: [
        {
          name: 'verify',
          image: 'quay.io/kata-containers/alpine-bash-curl:latest',
          // Prints the guest's kernel: a Kata pod runs its own, not the node's.
          command: ['uname', '-a'],
          resources: { limits: { memory: '256Mi' } },
        },
      ],
    },
  }
}

export interface StarterFiles {
  /** The policy, verifying with the first family's pod. */
  policy: string
  /** One verification pod per Kata RuntimeClass family, as `verify-<runtimeclass>.yaml`. */
  pods: { file: string; runtimeClass: string; text: string }[]
}

/** `kata-lcm init`: a starter policy and one verification pod per Kata RuntimeClass family. Read-only. */
export async function starterFiles(
  cluster: PolicyStore,
  release: { name: string; namespace: string },
): Promise<StarterFiles> {
  const families = kataFamilies(await cluster.listRuntimeClasses())
  if (families.length === 0)
    throw new InputError(
      'init',
      'the cluster has no Kata RuntimeClass (a handler or name kata-*): install kata-deploy first, or write the verification pod yourself',
    )
  const pods = families.map(({ name }) => ({
    file: `verify-${name}.yaml`,
    runtimeClass: name,
    text: stringify(verificationPodFor(name), { lineWidth: 0 }),
  }))
  const policy: Policy = {
    apiVersion: POLICY_API_VERSION,
    kind: 'Policy',
    release,
    nodeSelector: 'katacontainers.io/kata-runtime=true',
    batchSize: 1,
    drain: { enabled: false, timeout: '5m' },
    timeouts: { ready: '5m', helm: '10m' },
    verification: { namespace: 'default', timeout: '180s', pod: verificationPodFor(families[0]!.name) },
  }
  const others = pods.slice(1).map((p) => p.file)
  const header = [
    '# kata-lcm fleet policy (kata-lcm policy schema prints its JSON schema). Flags override each field.',
    '# Store it in the cluster, where every operator and the Argo template see it: kata-lcm policy set <this file>',
    `# Written by kata-lcm init from the cluster's Kata RuntimeClasses: ${families.map((f) => f.name).join(', ')}.`,
    ...(others.length > 0
      ? [`# verification.pod boots ${families[0]!.name}; to verify with another, use the pod in ${others.join(', ')}.`]
      : []),
  ]
  // Gates a fleet may want, off until uncommented.
  const gates = [
    '# A wave starts only inside a maintenance window (several allowed; the Argo template suspends until one opens):',
    '# windows:',
    '#   - {days: Mon-Fri, start: "02:00", end: "05:00", timeZone: Europe/Berlin}',
    "# A running Kata pod that restarts, dies or vanishes during its node's upgrade is always named; stop also stops the run:",
    '# workloads:',
    '#   onDisruption: stop',
    '# Firing Prometheus alerts that match hold each wave until they clear (at most timeout, then the run stops):',
    '# alerts:',
    '#   url: http://prometheus.monitoring:9090',
    '#   match: severity="critical"',
    '#   timeout: 1h',
  ]
  return { policy: `${header.join('\n')}\n${stringify(policy, { lineWidth: 0 })}${gates.join('\n')}\n`, pods }
}
