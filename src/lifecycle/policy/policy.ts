/**
 * The fleet's policy: one YAML document holding the defaults every run repeats (release, chart,
 * selection, batch size, timeouts, drain, the verification pod). It lives in the cluster (ConfigMap
 * `kata-lcm-policy`, written by `kata-lcm policy set`), so every operator and the Argo template see
 * the same one; `--policy FILE` uses a file instead. Flags override each field. Pure.
 */
import { parseAllDocuments, stringify } from 'yaml'
import { InputError } from '../errors.js'
import { POLICY_SCHEMA } from './policy-schema.js'
import { schemaViolation } from './schema-check.js'
import { DEFAULT_POLICY_NAMESPACE, SETTINGS, valueAt, type Setting } from '../settings/settings.js'
import { describeWindow, parseWindow, WINDOW_SEPARATOR } from '../gates/window.js'
import { documentValue } from '../settings/yaml-value.js'

export const POLICY_API_VERSION = 'kata-lcm.katacontainers.io/v1alpha1'
/** The ConfigMap that holds the cluster's policy, and its key. */
export const POLICY_CONFIGMAP = 'kata-lcm-policy'
export const POLICY_KEY = 'policy.yaml'
export { DEFAULT_POLICY_NAMESPACE }

export interface Policy {
  apiVersion: typeof POLICY_API_VERSION
  kind: 'Policy'
  release?: { name?: string; namespace?: string }
  chart?: string
  previousChart?: string
  nodeSelector?: string
  nodeTaint?: { key: string; value?: string }
  batchSize?: number | string
  canary?: number
  soak?: string
  /** Maintenance windows (window.ts): `{days, start, end, timeZone}`, days as names or ranges. */
  windows?: { days?: string[] | string; start: string; end: string; timeZone?: string }[]
  pools?: PoolSpec[]
  maxUnavailable?: number
  /** What a node's Kata pods that did not come through its upgrade do to the run (workloads.ts). */
  workloads?: { onDisruption?: 'report' | 'stop' }
  /** The alert gate (alerts.ts): a Prometheus API, label matchers, how long a hold may last. */
  alerts?: { url?: string; match?: string; timeout?: string }
  deploymentMode?: 'auto' | 'daemonset' | 'job'
  drain?: { enabled?: boolean; timeout?: string; force?: boolean; deleteEmptyDirData?: boolean }
  timeouts?: { ready?: string; helm?: string }
  verification?: { namespace?: string; timeout?: string; pod?: Record<string, unknown> }
}

/** A node pool as the policy (or a `--pools` file) writes it. */
export interface PoolSpec {
  name: string
  nodeSelector?: string
  nodeTaint?: { key: string; value?: string }
  batchSize?: number | string
  canary?: number
  verification?: { timeout?: string; pod?: Record<string, unknown> }
}

/** A policy and where it came from (`policy file ./p.yaml`, `policy ConfigMap kube-system/kata-lcm-policy`). */
export interface PolicySource {
  policy: Policy
  origin: string
}

/**
 * The policy a run takes its defaults from, named in its first line and its report: `ConfigMap
 * kube-system/kata-lcm-policy`, `file ./p.yaml`, `none (no ConfigMap kube-system/kata-lcm-policy)`,
 * `none (--no-policy)`.
 */
export interface PolicyInEffect {
  name: string
  /** The namespace of the cluster's policy ConfigMap when the run reads it: its access review covers that read. */
  namespace?: string
}

/** Parses and validates a policy document; an InputError names the source and the field. Pure. */
export function parsePolicy(text: string, origin: string): Policy {
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs) || docs.length !== 1)
    throw new InputError(origin, 'must be exactly one YAML document (kata-lcm init writes a starter)')
  const doc = docs[0]!
  if (doc.errors.length > 0) throw new InputError(origin, `not YAML: ${doc.errors[0]!.message.split('\n')[0]}`)
  const value = documentValue(doc, (why) => new InputError(origin, why))
  const found = schemaViolation(value, POLICY_SCHEMA, '')
  if (found) throw new InputError(origin, found)
  return value as Policy
}

/** The policy as YAML, for `policy set` and `policy show`. Pure. */
export function policyYaml(policy: Policy): string {
  return stringify(policy, { lineWidth: 0 })
}

/** The verification pod of the policy as YAML (`--verification-pod`'s content), or undefined. Pure. */
export function policyVerificationPod(policy: Policy | undefined): string | undefined {
  return policy?.verification?.pod ? stringify(policy.verification.pod, { lineWidth: 0 }) : undefined
}

/** The settings the policy sets as the flag's own value (not a file's content). */
const POLICY_VALUES = SETTINGS.filter((s): s is Setting & { policy: string } => s.policy !== undefined && !s.content)

/** The flag each policy field sets (flags given on the command line win), as the flag's own value. Pure. */
export function policyFlags(policy: Policy | undefined): Record<string, string | number | boolean> {
  if (!policy) return {}
  return Object.fromEntries(
    POLICY_VALUES.flatMap(({ flag, policy: field }) => {
      const value = valueAt(policy, field) as string | number | boolean | undefined
      return value === undefined ? [] : [[flag, value]]
    }),
  )
}

/** The template's `defaults.<key>` each policy-set flag becomes (the chart's values.yaml). */
const CHART_DEFAULT: Record<string, string> = Object.fromEntries(
  POLICY_VALUES.flatMap(({ flag, argo }) => ('chart' in argo && argo.chart ? [[flag, argo.chart]] : [])),
)

/**
 * The policy as the workflow chart's `defaults` (install-workflow): every field the template takes
 * (the settings table); the verification pod goes its own way (`--set-file defaults.verificationPod`). Pure.
 */
export function chartDefaults(policy: Policy | undefined): Record<string, unknown> | undefined {
  if (!policy) return undefined
  return {
    ...Object.fromEntries(
      Object.entries(policyFlags(policy)).flatMap(([flag, value]) =>
        CHART_DEFAULT[flag] ? [[CHART_DEFAULT[flag], value]] : [],
      ),
    ),
    // The pools as the plan step's --pools file (a YAML text the template passes base64-encoded).
    ...(policy.pools ? { pools: stringify(policy.pools, { lineWidth: 0 }) } : {}),
    // The windows as the plan step's --windows: each as --window takes it, joined by "; ".
    ...(policy.windows && policy.windows.length > 0
      ? {
          windows: policy.windows.map((w, i) => describeWindow(parseWindow(`windows[${i}]`, w))).join(WINDOW_SEPARATOR),
        }
      : {}),
  }
}

/** The policy field behind a flag, for errors about a value that came from the policy. Pure. */
export const POLICY_FIELD: Record<string, string> = Object.fromEntries(
  SETTINGS.flatMap(({ flag, policy }) => (policy ? [[flag, policy]] : [])),
)

/**
 * `flags` with each flag of the command (`defined`) that the command line did not give (`given`)
 * taken from the policy when it sets it; `origins` names where each taken value came from. Pure.
 */
export function withPolicy<F extends object>(
  flags: F,
  command: { given: ReadonlySet<string>; defined: ReadonlySet<string> },
  source: PolicySource | undefined,
): { flags: F; origins: Record<string, string> } {
  const out = { ...flags } as Record<string, unknown>
  const origins: Record<string, string> = {}
  for (const [flag, value] of Object.entries(policyFlags(source?.policy))) {
    if (command.given.has(flag) || !command.defined.has(flag)) continue
    out[flag] = value
    origins[flag] = `${source!.origin}: ${POLICY_FIELD[flag]}`
  }
  return { flags: out as F, origins }
}
