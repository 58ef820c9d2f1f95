/**
 * The run's settings, each once: the `upgrade` flag, the fleet policy's field, and how the Argo
 * template takes it (its workflow parameter, the chart's `defaults.<key>`, the `step plan` flag the
 * parameter is passed as), or why the template does not. The policy's flag mapping (`policyFlags`,
 * `POLICY_FIELD`) and `install-workflow`'s chart defaults (`chartDefaults`) are read from it, and
 * test/unit/chart/settings.test.ts holds the upgrade command's flags, the policy's schema, the
 * chart's values.schema.json and values.yaml, and the rendered template's parameters and plan step
 * to it: a flag or a policy field added without an entry, or an entry the template does not carry,
 * fails that test. Pure data.
 */

import { ON_DISRUPTION } from '../engine/workloads.js'
import { DEPLOYMENT_MODES } from '../modes/index.js'
import { DURATION_PATTERN } from './durations.js'

/** How the Argo template takes a setting. */
export type ArgoSetting =
  | {
      /** The workflow parameter (`argo submit -p <parameter>=...`). */
      parameter: string
      /** The chart value `defaults.<chart>` the parameter's default comes from; none: empty by default. */
      chart?: string
      /** The JSON schema of `defaults.<chart>`: chart/values.schema.json's entry is generated from it. */
      schema?: ChartSchema
      /** The `step plan` flag the parameter is passed as; default: the upgrade flag's name. */
      planFlag?: string
    }
  /** The template has no parameter for it, and why (a `step plan` flag it cannot honour is refused, exit 2). */
  | { not: string }

export interface Setting {
  /** The `kata-lcm upgrade` flag. */
  flag: string
  /** The policy field (a dotted path), when the policy sets it. */
  policy?: string
  /**
   * The policy holds the flag file's content (a Pod, a list of pools), not the flag's value: read by
   * the commands (`applyPolicy`, `poolsFrom`) rather than taken as the flag's value.
   */
  content?: true
  argo: ArgoSetting
}

/** A JSON schema, as chart/values.schema.json holds it. */
export type ChartSchema = Readonly<Record<string, unknown>>

/** The shapes the chart's values take (a parameter is a string; an empty one: unset). */
const SCHEMA = {
  text: { type: 'string' },
  required: { type: 'string', minLength: 1 },
  boolean: { type: 'boolean' },
  duration: { type: 'string', pattern: DURATION_PATTERN },
  optionalDuration: { type: 'string', pattern: `^(|${DURATION_PATTERN.slice(1, -1)})$` },
  count: {
    anyOf: [
      { type: 'integer', minimum: 1 },
      { type: 'string', pattern: '^([1-9][0-9]*)?$' },
    ],
  },
  namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
} as const satisfies Record<string, ChartSchema>

const IN_CLUSTER = "the steps run in the cluster as the chart's ServiceAccount, with no kubeconfig"
const PACING =
  "one process's pacing of its API requests, not a setting of the run: each step pod paces its own with the built-in limits"
const POLICY_READ =
  "install-workflow reads the policy and renders it into the template's defaults (defaults.policy names it); the steps read none"

/** Every setting of `kata-lcm upgrade`, in its flags' order. */
export const SETTINGS: readonly Setting[] = [
  { flag: 'kubeconfig', argo: { not: IN_CLUSTER } },
  { flag: 'context', argo: { not: IN_CLUSTER } },
  {
    flag: 'helm-release',
    policy: 'release.name',
    argo: { parameter: 'helm-release', chart: 'helmRelease', schema: { type: 'string', minLength: 1, maxLength: 53 } },
  },
  {
    flag: 'helm-namespace',
    policy: 'release.namespace',
    argo: { parameter: 'helm-namespace', chart: 'helmNamespace', schema: SCHEMA.namespace },
  },
  { flag: 'kube-qps', argo: { not: PACING } },
  { flag: 'kube-burst', argo: { not: PACING } },
  { flag: 'kube-max-in-flight', argo: { not: PACING } },
  { flag: 'policy', argo: { not: POLICY_READ } },
  { flag: 'no-policy', argo: { not: POLICY_READ } },
  { flag: 'policy-namespace', argo: { not: POLICY_READ } },
  // No chart default: each submission names its version (rollback-node needs none).
  { flag: 'target-version', argo: { parameter: 'target-version' } },
  { flag: 'chart', policy: 'chart', argo: { parameter: 'chart', chart: 'chart', schema: SCHEMA.required } },
  {
    flag: 'previous-chart',
    policy: 'previousChart',
    argo: {
      parameter: 'previous-chart',
      chart: 'previousChart',
      schema: {
        type: 'string',
        description: "The chart of the release's current version, for rollbacks; empty = chart",
      },
    },
  },
  {
    flag: 'node-selector',
    policy: 'nodeSelector',
    argo: {
      parameter: 'node-selector',
      chart: 'nodeSelector',
      schema: { type: 'string', description: 'kubectl label selector; empty = every node' },
    },
  },
  {
    flag: 'node-taint-key',
    policy: 'nodeTaint.key',
    argo: { parameter: 'node-taint-key', chart: 'nodeTaintKey', schema: SCHEMA.text },
  },
  {
    flag: 'node-taint-value',
    policy: 'nodeTaint.value',
    argo: { parameter: 'node-taint-value', chart: 'nodeTaintValue', schema: SCHEMA.text },
  },
  {
    flag: 'batch-size',
    policy: 'batchSize',
    argo: {
      parameter: 'batch-size',
      chart: 'batchSize',
      schema: {
        anyOf: [
          { type: 'integer', minimum: 1 },
          { type: 'string', pattern: '^([1-9][0-9]*|([1-9][0-9]?|100)%)$' },
        ],
      },
    },
  },
  { flag: 'canary', policy: 'canary', argo: { parameter: 'canary', chart: 'canary', schema: SCHEMA.count } },
  { flag: 'soak', policy: 'soak', argo: { parameter: 'soak', chart: 'soak', schema: SCHEMA.optionalDuration } },
  {
    flag: 'max-unavailable',
    policy: 'maxUnavailable',
    argo: { parameter: 'max-unavailable', chart: 'maxUnavailable', schema: SCHEMA.count },
  },
  {
    flag: 'on-workload-disruption',
    policy: 'workloads.onDisruption',
    argo: {
      parameter: 'on-workload-disruption',
      chart: 'onWorkloadDisruption',
      schema: { type: 'string', enum: [...ON_DISRUPTION] },
    },
  },
  {
    flag: 'alert-url',
    policy: 'alerts.url',
    argo: { parameter: 'alert-url', chart: 'alertUrl', schema: { type: 'string', pattern: '^(|https?://.+)$' } },
  },
  {
    flag: 'alert-match',
    policy: 'alerts.match',
    argo: { parameter: 'alert-match', chart: 'alertMatch', schema: SCHEMA.text },
  },
  {
    flag: 'alert-timeout',
    policy: 'alerts.timeout',
    argo: { parameter: 'alert-timeout', chart: 'alertTimeout', schema: SCHEMA.duration },
  },
  {
    flag: 'pools',
    policy: 'pools',
    content: true,
    argo: { parameter: 'pools', chart: 'pools', schema: SCHEMA.text, planFlag: 'pools-b64' },
  },
  // The windows as one parameter: each as --window takes it, joined by "; " (step plan --windows).
  {
    flag: 'window',
    policy: 'windows',
    content: true,
    argo: { parameter: 'windows', chart: 'windows', schema: SCHEMA.text, planFlag: 'windows' },
  },
  {
    flag: 'deployment-mode',
    policy: 'deploymentMode',
    argo: {
      parameter: 'deployment-mode',
      chart: 'deploymentMode',
      schema: { type: 'string', enum: ['auto', ...DEPLOYMENT_MODES] },
    },
  },
  {
    flag: 'drain',
    policy: 'drain.enabled',
    argo: { parameter: 'drain-enabled', chart: 'drainEnabled', schema: SCHEMA.boolean },
  },
  {
    flag: 'drain-timeout',
    policy: 'drain.timeout',
    argo: { parameter: 'drain-timeout', chart: 'drainTimeout', schema: SCHEMA.duration },
  },
  {
    flag: 'drain-force',
    policy: 'drain.force',
    argo: { parameter: 'drain-force', chart: 'drainForce', schema: SCHEMA.boolean },
  },
  {
    flag: 'accept-restart-hazard',
    argo: { parameter: 'accept-restart-hazard', chart: 'acceptRestartHazard', schema: SCHEMA.boolean },
  },
  {
    flag: 'drain-delete-emptydir-data',
    policy: 'drain.deleteEmptyDirData',
    argo: { parameter: 'drain-delete-emptydir-data', chart: 'drainDeleteEmptyDirData', schema: SCHEMA.boolean },
  },
  {
    flag: 'verification-pod',
    policy: 'verification.pod',
    content: true,
    argo: {
      parameter: 'verification-pod',
      chart: 'verificationPod',
      schema: {
        type: 'string',
        description:
          'Required (the templates refuse to render without it): the verification Pod YAML, e.g. --set-file defaults.verificationPod=./verification-pod.yaml',
      },
      planFlag: 'verification-pod-b64',
    },
  },
  {
    flag: 'verification-namespace',
    policy: 'verification.namespace',
    argo: { parameter: 'verification-namespace', chart: 'verificationNamespace', schema: SCHEMA.namespace },
  },
  {
    flag: 'verification-timeout',
    policy: 'verification.timeout',
    argo: { parameter: 'verification-timeout', chart: 'verificationTimeout', schema: SCHEMA.duration },
  },
  {
    flag: 'ready-timeout',
    policy: 'timeouts.ready',
    argo: { parameter: 'ready-timeout', chart: 'readyTimeout', schema: SCHEMA.duration },
  },
  {
    flag: 'helm-timeout',
    policy: 'timeouts.helm',
    argo: { parameter: 'helm-timeout', chart: 'helmTimeout', schema: SCHEMA.duration },
  },
  { flag: 'allow-downgrade', argo: { parameter: 'allow-downgrade', chart: 'allowDowngrade', schema: SCHEMA.boolean } },
  {
    flag: 'dry-run',
    argo: {
      not: 'a workflow always runs: preview its plan with kata-lcm upgrade --dry-run (step plan refuses --dry-run, exit 2)',
    },
  },
  {
    flag: 'metrics-file',
    argo: {
      not: "a workflow's metrics are the template's own, served by the workflow-controller's /metrics (docs/metrics.md)",
    },
  },
]

/** The value at a dotted `path` of `document`, or undefined. Pure. */
export function valueAt(document: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (value, key) =>
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined,
      document,
    )
}

/** The step's own chart value, not a setting: the policy the defaults came from. */
const POLICY_NAME: ChartSchema = {
  type: 'string',
  description: 'The fleet policy these defaults came from (set by kata-lcm install-workflow)',
}

/**
 * chart/values.schema.json's `defaults.properties`, from the table: each carried setting's value
 * under its chart key. `npm run generate` writes it into the chart; a unit test fails when the
 * chart's differs. Pure.
 */
export function chartDefaultsSchema(): Record<string, ChartSchema> {
  const entries = SETTINGS.flatMap((s) => ('chart' in s.argo && s.argo.chart ? [[s.argo.chart, s.argo.schema]] : []))
  for (const [key, schema] of entries) if (!schema) throw new Error(`settings: defaults.${key} has no schema`)
  return Object.fromEntries([['policy', POLICY_NAME], ...entries]) as Record<string, ChartSchema>
}
