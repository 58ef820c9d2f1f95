/**
 * The run's settings, each once: the `upgrade` flag with its help and default, its value's JSON
 * schema, the fleet policy's field, and how the Argo template takes it (its workflow parameter, the
 * chart's `defaults.<key>`, the `step plan` flag the parameter is passed as), or why the template
 * does not. Read by code: the flags (src/flags.ts), the policy's schema (policy/policy-schema.ts)
 * and flag mapping (`policyFlags`, `POLICY_FIELD`), and `install-workflow`'s chart defaults
 * (`chartDefaults`). Written from it by `npm run generate` (scripts/settings-files.ts): the chart's
 * values.schema.json and values.yaml defaults, the template's parameters, docs/argo.md's and
 * docs/policy.md's tables. test/unit/chart/settings.test.ts holds the rest to it (the command's
 * flags, the plan step's arguments): a flag added without an entry, or a generated file not
 * regenerated, fails that test. Pure data.
 */

import { ON_DISRUPTION } from '../engine/workloads.js'
import { DEPLOYMENT_MODES, modeChoices } from '../modes/index.js'
import { DEFAULT_CAPS, DEFAULT_LIMITS } from './client-limits.js'
import { MAX_DURATION_TEXT } from './durations.js'
import {
  BATCH_SIZE,
  BOOLEAN,
  COUNT,
  DURATION,
  NAMESPACE,
  NON_EMPTY,
  oneOf,
  POD,
  POOLS,
  RELEASE_NAME,
  TEXT,
  WINDOWS,
  type Schema,
} from './value-schemas.js'

/** How the Argo template takes a setting. */
export type ArgoSetting =
  | {
      /** The workflow parameter (`argo submit -p <parameter>=...`). */
      parameter: string
      /** The chart value `defaults.<chart>` the parameter's default comes from; none: empty by default. */
      chart?: string
      /**
       * The JSON schema of `defaults.<chart>` (chart/values.schema.json's entry is generated from
       * it) where the setting's own `schema` does not give it (`chartSchema`): the value is a
       * string there (a workflow parameter), an empty one: unset.
       */
      schema?: Schema
      /** The `step plan` flag the parameter is passed as; default: the upgrade flag's name. */
      planFlag?: string
      /**
       * The parameter's default: the chart value (default), its base64 (`base64`), or empty
       * (`empty`: none, or the chart embeds the value elsewhere).
       */
      value?: 'base64' | 'empty'
      /** The parameter's description where the flag's help does not fit it (a file's content, base64). */
      description?: string
      /** What the docs' parameter table adds about the template (docs/argo.md). */
      note?: string
    }
  /** The template has no parameter for it, and why (a `step plan` flag it cannot honour is refused, exit 2). */
  | { not: string }

export interface Setting {
  /** The `kata-lcm upgrade` flag. */
  flag: string
  /**
   * The setting's one line of help: the flag's description, and (with the flags it names turned
   * into parameters or chart values) the template parameter's and the chart value's.
   */
  help: string
  /** The default, when there is one: the flag's, the chart value's and the template parameter's. */
  default?: string | number | boolean
  /**
   * The value's JSON schema, as the policy holds it: the policy's schema is built from these
   * (policy/policy-schema.ts), and the chart value's unless `argo.schema` gives it. None: a
   * setting of the process (its kubeconfig, its pacing), not of the run.
   */
  schema?: Schema
  /** The policy field (a dotted path), when the policy sets it. */
  policy?: string
  /**
   * The policy holds the flag file's content (a Pod, a list of pools), not the flag's value: read by
   * the commands (`applyPolicy`, `poolsFrom`) rather than taken as the flag's value.
   */
  content?: true
  argo: ArgoSetting
}

const IN_CLUSTER = "the steps run in the cluster as the chart's ServiceAccount, with no kubeconfig"
const PACING =
  "one process's pacing of its API requests, not a setting of the run: each step pod paces its own with the built-in adaptive limits, from where the workflow's last step left them (on the run's Lease)"
const POLICY_READ =
  "install-workflow reads the policy and renders it into the template's defaults (defaults.policy names it); the steps read none"

/** The kata-deploy chart kata-lcm upgrades to when none is named. */
export const DEFAULT_CHART = 'oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy'
/** Where the cluster's fleet policy (ConfigMap kata-lcm-policy) lives unless --policy-namespace says. */
export const DEFAULT_POLICY_NAMESPACE = 'kube-system'

const upTo = `at most ${MAX_DURATION_TEXT}`
const adapts = (limit: keyof typeof DEFAULT_LIMITS) =>
  `Default: adapts, from ${DEFAULT_LIMITS[limit]} up to ${DEFAULT_CAPS[limit]}`

/** Every setting of `kata-lcm upgrade`, in its flags' order. */
export const SETTINGS: readonly Setting[] = [
  {
    flag: 'kubeconfig',
    help: 'Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).',
    argo: { not: IN_CLUSTER },
  },
  {
    flag: 'context',
    help: 'Kubeconfig context to use (default: its current-context).',
    argo: { not: IN_CLUSTER },
  },
  {
    flag: 'helm-release',
    schema: RELEASE_NAME,
    help: 'Name of the kata-deploy Helm release.',
    default: 'kata-deploy',
    policy: 'release.name',
    argo: { parameter: 'helm-release', chart: 'helmRelease' },
  },
  {
    flag: 'helm-namespace',
    schema: NAMESPACE,
    help: 'Namespace of the kata-deploy Helm release.',
    default: 'kube-system',
    policy: 'release.namespace',
    argo: {
      parameter: 'helm-namespace',
      chart: 'helmNamespace',
      note: 'the chart grants rights in this namespace only',
    },
  },
  {
    flag: 'kube-qps',
    help: `Requests per second kata-lcm sends the API server at most, sustained. ${adapts('qps')} while the API server answers fast and never throttles (429); given, it is the cap (and the start); either way kata-lcm backs off when throttled or slowed.`,
    argo: { not: PACING },
  },
  {
    flag: 'kube-burst',
    help: `Requests kata-lcm may send at once after a quiet spell, at most. ${adapts('burst')}.`,
    argo: { not: PACING },
  },
  {
    flag: 'kube-max-in-flight',
    help: `Requests awaiting an answer at any moment, at most. ${adapts('maxInFlight')}.`,
    argo: { not: PACING },
  },
  {
    flag: 'policy',
    help: "Fleet policy file (YAML; kata-lcm init writes one). Default: the cluster's, see --policy-namespace.",
    argo: { not: POLICY_READ },
  },
  {
    flag: 'no-policy',
    help: 'Use no fleet policy and do not look for one: flags and built-in defaults only (the Argo template passes every value itself). Without it, a policy ConfigMap that cannot be read (403, 5xx, unreachable) refuses the command.',
    default: false,
    argo: { not: POLICY_READ },
  },
  {
    flag: 'policy-namespace',
    help: 'Namespace of the cluster\'s policy (ConfigMap kata-lcm-policy, written by "kata-lcm policy set").',
    default: DEFAULT_POLICY_NAMESPACE,
    argo: { not: POLICY_READ },
  },
  {
    flag: 'target-version',
    schema: NON_EMPTY,
    help: 'kata-deploy chart version to upgrade to (semver, e.g. 3.28.0).',
    // No chart default: each submission names its version (rollback-node needs none).
    argo: {
      parameter: 'target-version',
      value: 'empty',
      description:
        'kata-deploy chart version to upgrade to (e.g. 3.28.0). Required by deploy-version; empty by default so that rollback-node can be submitted without it (Argo demands a value for every workflow parameter without one, whatever the entrypoint).',
    },
  },
  {
    flag: 'chart',
    schema: NON_EMPTY,
    help: 'kata-deploy chart: an OCI reference, repo/chart, a chart directory or a .tgz.',
    default: DEFAULT_CHART,
    policy: 'chart',
    argo: { parameter: 'chart', chart: 'chart', note: 'a path is one inside the image' },
  },
  {
    flag: 'previous-chart',
    schema: NON_EMPTY,
    help: "Chart reference for the release's current version, used to roll back (default: --chart). Needed when --chart is a local .tgz or directory.",
    policy: 'previousChart',
    argo: {
      parameter: 'previous-chart',
      chart: 'previousChart',
      note: "rollback-node's chart too",
    },
  },
  {
    flag: 'node-selector',
    schema: TEXT,
    help: 'Label selector for the nodes, kubectl syntax (e.g. "node-pool=kata,zone in (a,b)"); empty: every node.',
    policy: 'nodeSelector',
    argo: { parameter: 'node-selector', chart: 'nodeSelector' },
  },
  {
    flag: 'node-taint-key',
    schema: NON_EMPTY,
    help: 'Select nodes carrying a taint with this key; empty: no taint filter.',
    policy: 'nodeTaint.key',
    argo: { parameter: 'node-taint-key', chart: 'nodeTaintKey' },
  },
  {
    flag: 'node-taint-value',
    schema: TEXT,
    help: 'With --node-taint-key: only taints with this value; empty: any value.',
    policy: 'nodeTaint.value',
    argo: { parameter: 'node-taint-value', chart: 'nodeTaintValue' },
  },
  {
    flag: 'batch-size',
    schema: BATCH_SIZE,
    help: 'Nodes per wave: a number (1 = strict node by node) or a percentage of the selected nodes (25%).',
    default: 1,
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
  {
    flag: 'canary',
    schema: COUNT,
    help: 'The first wave has this many nodes (a canary), the later ones --batch-size; empty: no canary.',
    policy: 'canary',
    argo: { parameter: 'canary', chart: 'canary' },
  },
  {
    flag: 'soak',
    schema: DURATION,
    help: `After each wave but the last: keep its nodes in service this long, watched, and re-check them before the next (e.g. 10m; ${upTo}); empty: no soak.`,
    policy: 'soak',
    argo: {
      parameter: 'soak',
      chart: 'soak',
      note: "in the wave's verify step",
    },
  },
  {
    flag: 'max-unavailable',
    schema: COUNT,
    help: 'At most this many selected nodes unschedulable at once, across pools, counting nodes already cordoned: caps every wave; empty: no cap.',
    policy: 'maxUnavailable',
    argo: { parameter: 'max-unavailable', chart: 'maxUnavailable' },
  },
  {
    flag: 'on-workload-disruption',
    schema: oneOf(ON_DISRUPTION),
    help: 'The Kata pods running on a node are recorded before its upgrade and compared once it verified; one that restarted, died or vanished is named on the node, in an Event and in the report. report: the run goes on; stop: it also stops before the next wave (exit 3).',
    default: 'report',
    policy: 'workloads.onDisruption',
    argo: {
      parameter: 'on-workload-disruption',
      chart: 'onWorkloadDisruption',
      note: "stop: the wave's last step fails and no later wave starts",
    },
  },
  {
    flag: 'alert-url',
    schema: { type: 'string', pattern: '^https?://.+$' },
    help: 'A Prometheus API (http://prometheus.monitoring:9090): before each wave, its firing alerts that match --alert-match hold the run until they clear; a Prometheus that does not answer holds it too. Empty: no alert gate.',
    policy: 'alerts.url',
    argo: {
      parameter: 'alert-url',
      chart: 'alertUrl',
      note: '`step alerts` asks before each wave; held, it exits 75 and Argo retries it (15 s backoff doubling to 2 min, no pod between questions)',
    },
  },
  {
    flag: 'alert-match',
    schema: TEXT,
    help: 'Which firing alerts hold the run: Prometheus label matchers, comma-separated (severity="critical",alertname=~"Kata.*"). Empty: every firing alert.',
    policy: 'alerts.match',
    argo: { parameter: 'alert-match', chart: 'alertMatch' },
  },
  {
    flag: 'alert-timeout',
    schema: DURATION,
    help: `How long alerts may hold one wave; then the run stops, exit 3, and a rerun goes on (${upTo}).`,
    default: '1h',
    policy: 'alerts.timeout',
    argo: { parameter: 'alert-timeout', chart: 'alertTimeout' },
  },
  {
    flag: 'pools',
    schema: POOLS,
    help: 'YAML list of node pools (name, nodeSelector, nodeTaint, batchSize, canary, verification.{pod,timeout}), upgraded in that order, each verified with its own pod.',
    policy: 'pools',
    content: true,
    argo: {
      parameter: 'pools',
      chart: 'pools',
      schema: {
        type: 'string',
        description:
          "Node pools, upgraded in order, each verified with its own pod: a YAML list as kata-lcm upgrade --pools takes it (name, nodeSelector, nodeTaint, batchSize, canary, verification.{pod,timeout}). Give it with --set-file defaults.pools=./pools.yaml (install-workflow writes the policy's pools here). verificationPod stays required: rollback-node verifies with it, and so does a pool without a pod of its own. Empty: no pools.",
      },
      planFlag: 'pools-b64',
      value: 'base64',
      description:
        'The node pools, base64-encoded YAML (a kata-lcm upgrade --pools file), upgraded in order, each verified with its own pod; empty: no pools.',
      note: "the run record keeps each wave's pool, so each wave's verify step uses its pool's pod; rollback-node verifies a pooled node with its pool's pod",
    },
  },
  // The windows as one parameter: each as --window takes it, joined by "; " (step plan --windows).
  {
    flag: 'window',
    schema: WINDOWS,
    help: 'A maintenance window a wave may start in: "[DAYS] HH:MM-HH:MM [TIME ZONE]", e.g. "Mon-Fri 02:00-05:00 Europe/Berlin" (an end before the start crosses midnight; zone default UTC). Repeatable; a wave in progress always finishes. None: any time.',
    policy: 'windows',
    content: true,
    argo: {
      parameter: 'windows',
      chart: 'windows',
      schema: TEXT,
      planFlag: 'windows',
      description:
        'Maintenance windows a wave may start in, each as kata-lcm upgrade --window takes it, separated by ";" (e.g. "Mon-Fri 02:00-05:00 Europe/Berlin; Sat 00:00-06:00"). Before each wave the workflow suspends until one opens (no pod runs meanwhile). Empty: any time.',
    },
  },
  {
    flag: 'deployment-mode',
    schema: oneOf(['auto', ...DEPLOYMENT_MODES]),
    help: `${modeChoices('auto (read from the release)')}.`,
    default: 'auto',
    policy: 'deploymentMode',
    argo: {
      parameter: 'deployment-mode',
      chart: 'deploymentMode',
    },
  },
  {
    flag: 'drain',
    schema: BOOLEAN,
    help: 'Evict workloads (Eviction API) after cordon, before the upgrade. DaemonSet and static pods stay.',
    default: false,
    policy: 'drain.enabled',
    argo: { parameter: 'drain-enabled', chart: 'drainEnabled' },
  },
  {
    flag: 'drain-timeout',
    schema: DURATION,
    help: `How long a drain may take per node (${upTo}).`,
    default: '5m',
    policy: 'drain.timeout',
    argo: { parameter: 'drain-timeout', chart: 'drainTimeout' },
  },
  {
    flag: 'drain-force',
    schema: BOOLEAN,
    help: 'With --drain: also evict pods no controller manages (they are gone for good), like kubectl drain --force.',
    default: false,
    policy: 'drain.force',
    argo: {
      parameter: 'drain-force',
      chart: 'drainForce',
      note: "as the policy's drain.force, it waits for a run that drains: not refused without drain-enabled, but it evicts nothing then",
    },
  },
  {
    flag: 'accept-restart-hazard',
    schema: BOOLEAN,
    help: "Restart kata-deploy pods whose restart kata-deploy makes disruptive (3.28.0 crashes the node's Kata pods) without --drain.",
    default: false,
    argo: { parameter: 'accept-restart-hazard', chart: 'acceptRestartHazard' },
  },
  {
    flag: 'drain-delete-emptydir-data',
    schema: BOOLEAN,
    help: 'With --drain: also evict pods with emptyDir volumes (their data is lost), like kubectl drain --delete-emptydir-data.',
    default: false,
    policy: 'drain.deleteEmptyDirData',
    argo: { parameter: 'drain-delete-emptydir-data', chart: 'drainDeleteEmptyDirData' },
  },
  {
    flag: 'verification-pod',
    schema: POD,
    help: "Pod YAML run on each upgraded node; ${NODE} and ${TEST_POD} are substituted. This or the policy's is required, unless every pool has its own.",
    policy: 'verification.pod',
    content: true,
    argo: {
      parameter: 'verification-pod',
      chart: 'verificationPod',
      schema: {
        type: 'string',
        description:
          'REQUIRED: the Pod YAML run on every upgraded node (${NODE} and ${TEST_POD} are substituted). Give it with --set-file defaults.verificationPod=./verification-pod.yaml; the chart refuses to render without it, so upgrades are always verified.',
      },
      planFlag: 'verification-pod-b64',
      value: 'empty',
      description:
        'The verification Pod YAML, base64-encoded (base64 -w0 pod.yaml). Empty: the pod installed with the chart (defaults.verificationPod).',
    },
  },
  {
    flag: 'verification-namespace',
    schema: NAMESPACE,
    help: 'Namespace for the verification pods.',
    default: 'default',
    policy: 'verification.namespace',
    argo: {
      parameter: 'verification-namespace',
      chart: 'verificationNamespace',
      note: 'the chart grants pod rights in this namespace only',
    },
  },
  {
    flag: 'verification-timeout',
    schema: DURATION,
    help: `How long a verification pod may take (e.g. 90s, 5m; ${upTo}).`,
    default: '180s',
    policy: 'verification.timeout',
    argo: { parameter: 'verification-timeout', chart: 'verificationTimeout' },
  },
  {
    flag: 'ready-timeout',
    schema: DURATION,
    help: `How long the new kata-deploy pod (or install Job) may take on a node (${upTo}).`,
    default: '5m',
    policy: 'timeouts.ready',
    argo: {
      parameter: 'ready-timeout',
      chart: 'readyTimeout',
      note: 'rollback-node takes it too',
    },
  },
  {
    flag: 'helm-timeout',
    schema: DURATION,
    help: `Passed to helm upgrade --timeout (${upTo}).`,
    default: '10m',
    policy: 'timeouts.helm',
    argo: {
      parameter: 'helm-timeout',
      chart: 'helmTimeout',
      note: 'rollback-node takes it too',
    },
  },
  {
    flag: 'allow-downgrade',
    schema: BOOLEAN,
    help: "Allow a --target-version older than the release's.",
    default: false,
    argo: { parameter: 'allow-downgrade', chart: 'allowDowngrade' },
  },
  {
    flag: 'dry-run',
    help: 'Print the plan (nodes, waves, versions, helm command) and write nothing.',
    default: false,
    argo: {
      not: 'a workflow always runs: preview its plan with kata-lcm upgrade --dry-run (step plan refuses --dry-run, exit 2)',
    },
  },
  {
    flag: 'metrics-file',
    help: "Keep the run's Prometheus metrics in FILE (must end in .prom; its directory must exist), node_exporter's textfile format: rewritten at each wave and at the end (docs/metrics.md).",
    argo: {
      not: "a workflow's metrics are the template's own, served by the workflow-controller's /metrics (docs/metrics.md)",
    },
  },
]

/** The table's entry of `flag`; throws on a name the table does not have (a typo in the code). */
export function setting(flag: string): Setting {
  const found = SETTINGS.find((s) => s.flag === flag)
  if (!found) throw new Error(`settings: no setting --${flag}`)
  return found
}

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
const POLICY_NAME: Schema = {
  type: 'string',
  description:
    'The fleet policy these defaults came from (kata-lcm install-workflow sets it, e.g. "ConfigMap kube-system/kata-lcm-policy"); each run\'s plan step names it in its first line. Empty: none recorded.',
}

/**
 * A carried setting's chart value's JSON schema: the table's `argo.schema`, else the setting's own
 * as a workflow parameter takes it (a string): a whole number also as its digits, and without a
 * default, empty too (unset). Pure.
 */
export function chartSchema(s: Setting): Schema {
  if ('schema' in s.argo && s.argo.schema) return s.argo.schema
  if (!s.schema) throw new Error(`settings: --${s.flag} has neither a schema nor a chart schema`)
  const value: Record<string, unknown> = { ...s.schema }
  delete value.description
  const optional = s.default === undefined
  if (value.type === 'integer')
    return { anyOf: [value, { type: 'string', pattern: optional ? '^([1-9][0-9]*)?$' : '^[1-9][0-9]*$' }] }
  if (value.type !== 'string' || !optional) return value
  delete value.minLength
  if (typeof value.pattern === 'string') value.pattern = `^(|${value.pattern.slice(1, -1)})$`
  return value
}

/**
 * chart/values.schema.json's `defaults.properties`, from the table: each carried setting's value
 * under its chart key. `npm run generate` writes it into the chart; a unit test fails when the
 * chart's differs. Pure.
 */
export function chartDefaultsSchema(): Record<string, Schema> {
  const entries = SETTINGS.flatMap((s) => ('chart' in s.argo && s.argo.chart ? [[s.argo.chart, chartSchema(s)]] : []))
  return Object.fromEntries([['policy', POLICY_NAME], ...entries]) as Record<string, Schema>
}
