import { Flags } from '@oclif/core'
import { DEFAULT_CAPS, DEFAULT_LIMITS } from './deps.js'
import { helmDuration, MAX_DURATION_TEXT, parseDuration as parseNamedDuration } from './lifecycle/settings/durations.js'
import { InputError } from './lifecycle/errors.js'
import { parseBatchSize } from './lifecycle/run/plan.js'
import type { Pool } from './lifecycle/run/pools.js'
import { DEFAULT_CHART, type RequestedMode, type UpgradeRequest } from './lifecycle/checks/prerequisites.js'
import { parseWindow, parseWindowFlag, type MaintenanceWindow } from './lifecycle/gates/window.js'
import type { PolicySource } from './lifecycle/policy/policy.js'
import { ON_DISRUPTION, type OnDisruption } from './lifecycle/engine/workloads.js'
import { parseMatchers, type AlertGate } from './lifecycle/gates/alerts.js'

/** Flags every command takes. */
export const globalFlags = {
  kubeconfig: Flags.string({
    description: 'Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).',
    helpGroup: 'GLOBAL',
  }),
  context: Flags.string({
    description: 'Kubeconfig context to use (default: its current-context).',
    helpGroup: 'GLOBAL',
  }),
  'helm-release': Flags.string({
    description: 'Name of the kata-deploy Helm release.',
    default: 'kata-deploy',
    helpGroup: 'GLOBAL',
  }),
  'helm-namespace': Flags.string({
    description: 'Namespace of the kata-deploy Helm release.',
    default: 'kube-system',
    helpGroup: 'GLOBAL',
  }),
  'kube-qps': Flags.integer({
    description: `Requests per second kata-lcm sends the API server at most, sustained. Default: adapts, from ${DEFAULT_LIMITS.qps} up to ${DEFAULT_CAPS.qps} while the API server answers fast and never throttles (429); given, it is the cap (and the start); either way kata-lcm backs off when throttled or slowed.`,
    min: 1,
    helpGroup: 'GLOBAL',
  }),
  'kube-burst': Flags.integer({
    description: `Requests kata-lcm may send at once after a quiet spell, at most. Default: adapts, from ${DEFAULT_LIMITS.burst} up to ${DEFAULT_CAPS.burst}.`,
    min: 1,
    helpGroup: 'GLOBAL',
  }),
  'kube-max-in-flight': Flags.integer({
    description: `Requests awaiting an answer at any moment, at most. Default: adapts, from ${DEFAULT_LIMITS.maxInFlight} up to ${DEFAULT_CAPS.maxInFlight}.`,
    min: 1,
    helpGroup: 'GLOBAL',
  }),
}

/** Node selection, shared by upgrade, status and the Argo steps. */
export const selectionFlags = {
  'node-selector': Flags.string({
    description: 'Label selector for the nodes, kubectl syntax (e.g. "node-pool=kata,zone in (a,b)").',
  }),
  'node-taint-key': Flags.string({ description: 'Select nodes carrying a taint with this key.' }),
  'node-taint-value': Flags.string({ description: 'With --node-taint-key: only taints with this value.' }),
}

const upTo = `at most ${MAX_DURATION_TEXT}`

export const verificationFlags = {
  'verification-namespace': Flags.string({ description: 'Namespace for the verification pods.', default: 'default' }),
  'verification-timeout': Flags.string({
    description: `How long a verification pod may take (e.g. 90s, 5m; ${upTo}).`,
    default: '180s',
  }),
}

export const timingFlags = {
  'ready-timeout': Flags.string({
    description: `How long the new kata-deploy pod (or install Job) may take on a node (${upTo}).`,
    default: '5m',
  }),
  'helm-timeout': Flags.string({ description: `Passed to helm upgrade --timeout (${upTo}).`, default: '10m' }),
}

/**
 * Drain, shared by upgrade and the Argo plan step. Each boolean also takes its --no- form: on the
 * command line it beats the policy's true, and the template passes every boolean parameter as one
 * flag or the other.
 */
export const drainFlags = {
  drain: Flags.boolean({
    description: 'Evict workloads (Eviction API) after cordon, before the upgrade. DaemonSet and static pods stay.',
    default: false,
    allowNo: true,
  }),
  'drain-timeout': Flags.string({ description: `How long a drain may take per node (${upTo}).`, default: '5m' }),
  'drain-force': Flags.boolean({
    description:
      'With --drain: also evict pods no controller manages (they are gone for good), like kubectl drain --force.',
    default: false,
    allowNo: true,
  }),
  'accept-restart-hazard': Flags.boolean({
    description:
      "Restart kata-deploy pods whose restart kata-deploy makes disruptive (3.28.0 crashes the node's Kata pods) without --drain.",
    default: false,
    allowNo: true,
  }),
  'drain-delete-emptydir-data': Flags.boolean({
    description:
      'With --drain: also evict pods with emptyDir volumes (their data is lost), like kubectl drain --delete-emptydir-data.',
    default: false,
    allowNo: true,
  }),
}

/** `--allow-downgrade`, shared by upgrade and the Argo plan step. */
export const allowDowngradeFlag = Flags.boolean({
  description: "Allow a --target-version older than the release's.",
  default: false,
  allowNo: true,
})

/** The shape of a rollout: wave size, the canary, the soak. Shared by upgrade and the Argo plan step. */
export const rolloutFlags = {
  'batch-size': Flags.string({
    description: 'Nodes per wave: a number (1 = strict node by node) or a percentage of the selected nodes (25%).',
    default: '1',
  }),
  canary: Flags.string({
    description: 'The first wave has this many nodes (a canary), the later ones --batch-size (empty: no canary).',
  }),
  soak: Flags.string({
    description: `After each wave but the last: keep its nodes in service this long, watched, and re-check them before the next (e.g. 10m; ${upTo}).`,
  }),
  'max-unavailable': Flags.string({
    description:
      'At most this many selected nodes unschedulable at once, across pools, counting nodes already cordoned: caps every wave (empty: no cap).',
  }),
  'on-workload-disruption': Flags.string({
    description:
      'The Kata pods running on a node are recorded before its upgrade and compared once it verified; one that restarted, died or vanished is named on the node, in an Event and in the report. report: the run goes on; stop: it also stops before the next wave (exit 3).',
    default: 'report',
  }),
}

/** `--window`: a maintenance window, repeatable (window.ts); the Argo plan step takes them as one `--windows`. */
export const windowFlag = Flags.string({
  description:
    'A maintenance window a wave may start in: "[DAYS] HH:MM-HH:MM [TIME ZONE]", e.g. "Mon-Fri 02:00-05:00 Europe/Berlin" (an end before the start crosses midnight; zone default UTC). Repeatable; a wave in progress always finishes. Default: the policy\'s windows; none: any time.',
  multiple: true,
})

/** The alert gate, shared by upgrade and the Argo plan step (alerts.ts). */
export const alertFlags = {
  'alert-url': Flags.string({
    description:
      "A Prometheus API (http://prometheus.monitoring:9090): before each wave, its firing alerts that match --alert-match hold the run until they clear; a Prometheus that does not answer holds it too. Empty: no alert gate. Default: the policy's alerts.url.",
  }),
  'alert-match': Flags.string({
    description:
      'Which firing alerts hold the run: Prometheus label matchers, comma-separated (severity="critical",alertname=~"Kata.*"). Empty: every firing alert.',
  }),
  'alert-timeout': Flags.string({
    description: `How long alerts may hold one wave; then the run stops, exit 3, and a rerun goes on (${upTo}).`,
    default: '1h',
  }),
}

/**
 * The policy's maintenance windows (`windows`), each checked naming its item (`policy ...: windows[0]`);
 * undefined when the policy sets none. Pure.
 */
export function policyWindows(source: PolicySource | undefined): MaintenanceWindow[] | undefined {
  const windows = source?.policy.windows
  if (!windows || windows.length === 0) return undefined
  return windows.map((w, i) => parseWindow(`${source.origin}: windows[${i}]`, w))
}

/** `--pools FILE`: the node pools, upgraded in order. Shared by upgrade (the plan step takes them base64-encoded). */
export const poolsFlag = Flags.string({
  description:
    "YAML list of node pools (name, nodeSelector, batchSize, canary, verification.pod), upgraded in that order, each verified with its own pod. Default: the policy's pools.",
})

export const chartFlag = Flags.string({
  description: 'kata-deploy chart: an OCI reference, repo/chart, a chart directory or a .tgz.',
  default: DEFAULT_CHART,
})

/** The selection flags as the domain's NodeSelection. */
export function selectionFrom(flags: {
  'node-selector'?: string | undefined
  'node-taint-key'?: string | undefined
  'node-taint-value'?: string | undefined
}) {
  return {
    ...(flags['node-selector'] ? { labelSelector: flags['node-selector'] } : {}),
    ...(flags['node-taint-key'] ? { taintKey: flags['node-taint-key'] } : {}),
    ...(flags['node-taint-value'] !== undefined ? { taintValue: flags['node-taint-value'] } : {}),
  }
}

/** The upgrade flags both `upgrade` and `step plan` take. */
export interface UpgradeFlags {
  'target-version': string
  chart: string
  'previous-chart'?: string | undefined
  'node-selector'?: string | undefined
  'node-taint-key'?: string | undefined
  'node-taint-value'?: string | undefined
  'batch-size': string
  canary?: string | number | undefined
  soak?: string | undefined
  'max-unavailable'?: string | number | undefined
  'on-workload-disruption'?: string | undefined
  'alert-url'?: string | undefined
  'alert-match'?: string | undefined
  'alert-timeout'?: string | undefined
  window?: string[] | undefined
  'deployment-mode': string
  drain: boolean
  'drain-timeout': string
  'drain-force': boolean
  'drain-delete-emptydir-data': boolean
  'accept-restart-hazard'?: boolean
  'verification-namespace': string
  'verification-timeout': string
  'ready-timeout': string
  'helm-timeout': string
  'helm-release': string
  'helm-namespace': string
  'allow-downgrade'?: boolean
  'dry-run'?: boolean
}

/**
 * `--drain-force` and `--drain-delete-emptydir-data` only widen a drain: given on the command line
 * where nothing drains (neither `--drain` nor the policy's drain.enabled), they are refused rather
 * than ignored. The policy's own drain.force and drain.deleteEmptyDirData (`origins`) wait for a
 * run that drains. Pure.
 */
export function checkDrainOptions(
  flags: Pick<UpgradeFlags, 'drain' | 'drain-force' | 'drain-delete-emptydir-data'>,
  origins: Record<string, string>,
): void {
  if (flags.drain) return
  for (const flag of ['drain-force', 'drain-delete-emptydir-data'] as const) {
    if (flags[flag] && origins[flag] === undefined)
      throw new InputError(
        `--${flag}`,
        `evicts nothing without --drain (nor does the policy's drain.enabled turn drain on); add --drain, or leave out --${flag}`,
      )
  }
}

/** `--canary N` or `--max-unavailable N`: a whole number of nodes >= 1. */
function nodeCount(field: string, value: string | number, what: string): number {
  const text = String(value).trim()
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new InputError(field, `"${text}" is not ${what}; use a whole number of nodes >= 1 (e.g. 1)`)
  return Number(text)
}

/**
 * `--alert-url` (with `--alert-match` and `--alert-timeout`) as the run's alert gate; none without a
 * URL, when `--alert-match` given on the command line is refused rather than ignored. Pure.
 */
function alertGateFrom(
  flags: Pick<UpgradeFlags, 'alert-url' | 'alert-match' | 'alert-timeout'>,
  origins: Record<string, string>,
  parseDuration: (flag: string, text: string) => number,
): { alerts?: AlertGate } {
  const url = flags['alert-url']?.trim() ?? ''
  const match = flags['alert-match']?.trim() ?? ''
  if (!url) {
    if (match && origins['alert-match'] === undefined)
      throw new InputError(
        '--alert-match',
        "holds nothing without --alert-url (nor the policy's alerts.url); add --alert-url, or leave out --alert-match",
      )
    return {}
  }
  const urlField = origins['alert-url'] ?? '--alert-url'
  if (!/^https?:\/\/[^\s/]+/.test(url))
    throw new InputError(urlField, `"${url}" is not a Prometheus URL; use e.g. http://prometheus.monitoring:9090`)
  parseMatchers(origins['alert-match'] ?? '--alert-match', match)
  return { alerts: { url, match, timeoutMs: parseDuration('--alert-timeout', flags['alert-timeout'] ?? '1h') } }
}

/** `--on-workload-disruption report|stop`. */
function onDisruption(field: string, value: string): OnDisruption {
  if (!(ON_DISRUPTION as readonly string[]).includes(value))
    throw new InputError(field, `"${value}" is not one; use ${ON_DISRUPTION.join(' or ')}`)
  return value as OnDisruption
}

/** `--batch-size N` or `P%` as the request's batchSize / batchPercent. */
function batchFrom(field: string, value: string): { batchSize: number; batchPercent?: number } {
  const spec = parseBatchSize(field, value)
  return 'nodes' in spec ? { batchSize: spec.nodes } : { batchSize: 1, batchPercent: spec.percent }
}

/**
 * Builds the domain's UpgradeRequest from the flags, all but the policy in effect (the caller's);
 * durations are parsed here, naming the flag.
 */
export function upgradeRequestFrom(
  flags: UpgradeFlags,
  verification: { source: string; origin: string },
  /** Where a flag's value came from when the fleet policy set it: errors name the policy's field. */
  origins: Record<string, string> = {},
  pools?: Pool[],
): Omit<UpgradeRequest, 'policy'> {
  const parseDuration = (flag: string, text: string) => parseNamedDuration(origins[flag.slice(2)] ?? flag, text)
  return {
    targetVersion: flags['target-version'],
    chart: flags.chart,
    ...(flags['previous-chart'] ? { previousChart: flags['previous-chart'] } : {}),
    selection: selectionFrom(flags),
    ...batchFrom(origins['batch-size'] ?? '--batch-size', flags['batch-size']),
    ...(flags.canary !== undefined && flags.canary !== ''
      ? { canary: nodeCount(origins.canary ?? '--canary', flags.canary, 'a canary size') }
      : {}),
    ...(flags['max-unavailable'] !== undefined && flags['max-unavailable'] !== ''
      ? {
          maxUnavailable: nodeCount(
            origins['max-unavailable'] ?? '--max-unavailable',
            flags['max-unavailable'],
            'a node count',
          ),
        }
      : {}),
    ...(pools ? { pools } : {}),
    ...(flags['on-workload-disruption'] !== undefined
      ? {
          onWorkloadDisruption: onDisruption(
            origins['on-workload-disruption'] ?? '--on-workload-disruption',
            flags['on-workload-disruption'],
          ),
        }
      : {}),
    ...(flags.soak ? { soakMs: parseDuration('--soak', flags.soak) } : {}),
    ...alertGateFrom(flags, origins, parseDuration),
    ...(flags.window && flags.window.length > 0
      ? { windows: flags.window.map((w) => parseWindowFlag('--window', w)) }
      : {}),
    drain: flags.drain,
    drainTimeoutMs: parseDuration('--drain-timeout', flags['drain-timeout']),
    drainPolicy: { force: flags['drain-force'], deleteEmptyDirData: flags['drain-delete-emptydir-data'] },
    verification: {
      ...verification,
      namespace: flags['verification-namespace'],
      timeoutMs: parseDuration('--verification-timeout', flags['verification-timeout']),
    },
    readyTimeoutMs: parseDuration('--ready-timeout', flags['ready-timeout']),
    helmTimeout: helmDuration(parseDuration('--helm-timeout', flags['helm-timeout'])),
    release: { name: flags['helm-release'], namespace: flags['helm-namespace'] },
    deploymentMode: flags['deployment-mode'] as RequestedMode,
    allowDowngrade: flags['allow-downgrade'] ?? false,
    dryRun: flags['dry-run'] ?? false,
    acceptRestartHazard: flags['accept-restart-hazard'] ?? false,
  }
}
