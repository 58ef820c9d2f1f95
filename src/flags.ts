import { Flags } from '@oclif/core'
import { helmDuration, parseDuration as parseNamedDuration } from './lifecycle/settings/durations.js'
import { setting, type Setting } from './lifecycle/settings/settings.js'
import { BOOLEAN } from './lifecycle/settings/value-schemas.js'
import { InputError } from './lifecycle/errors.js'
import { parseBatchSize } from './lifecycle/run/plan.js'
import type { Pool } from './lifecycle/run/pools.js'
import type { RequestedMode, UpgradeRequest } from './lifecycle/checks/prerequisites.js'
import { parseWindow, parseWindowFlag, type MaintenanceWindow } from './lifecycle/gates/window.js'
import type { PolicySource } from './lifecycle/policy/policy.js'
import { ON_DISRUPTION, type OnDisruption } from './lifecycle/engine/workloads.js'
import { parseMatchers, type AlertGate } from './lifecycle/gates/alerts.js'

/**
 * A setting's flag from the table (src/lifecycle/settings/settings.ts): its help, the policy field
 * that fills it when the command line does not, and its default. The `*Setting` builders below add
 * what only the flag has (its kind, help group, bounds); each checks that its kind is the one the
 * table's entry gives (its default, its value's schema), so a flag built with the wrong one fails
 * as the command loads, in every test.
 */
function described(flag: string): { description: string; entry: Setting } {
  const entry = setting(flag)
  return { description: entry.policy ? `${entry.help} Policy field: ${entry.policy}.` : entry.help, entry }
}

function mismatch(flag: string, builder: string, why: string): Error {
  return new Error(`flags: --${flag} is built with ${builder}, but its entry in the settings table ${why}`)
}

/** Whether the entry is a yes/no: its schema, or (a setting of the process) its default. */
function isBoolean(entry: Setting): boolean {
  return entry.schema === BOOLEAN || typeof entry.default === 'boolean'
}

/** A string setting without a default (undefined when neither the command line nor the policy sets it). */
export function stringSetting(flag: string, options: { helpGroup?: string } = {}) {
  const { description, entry } = described(flag)
  if (isBoolean(entry)) throw mismatch(flag, 'stringSetting', 'is a boolean (booleanSetting)')
  if (entry.default !== undefined) throw mismatch(flag, 'stringSetting', 'has a default (defaultedSetting)')
  return Flags.string({ description, ...options })
}

/** A string setting every run must give (no default, nor from the policy). */
export function requiredSetting(flag: string) {
  const { description, entry } = described(flag)
  if (entry.default !== undefined || entry.policy !== undefined)
    throw mismatch(flag, 'requiredSetting', 'has a default or a policy field')
  return Flags.string({ description, required: true })
}

/** A string setting with its table default. */
export function defaultedSetting(flag: string, options: { helpGroup?: string } = {}) {
  const { description, entry } = described(flag)
  if (isBoolean(entry)) throw mismatch(flag, 'defaultedSetting', 'is a boolean (booleanSetting)')
  if (entry.default === undefined) throw mismatch(flag, 'defaultedSetting', 'has no default (stringSetting)')
  return Flags.string({ description, default: String(entry.default), ...options })
}

/**
 * A boolean setting (false unless the table says true). A setting of the run (its schema a boolean)
 * also takes its `--no-` form: on the command line it beats the policy's true, and the template
 * passes every boolean parameter as one flag or the other.
 */
export function booleanSetting(flag: string, options: { helpGroup?: string } = {}) {
  const { description, entry } = described(flag)
  if (!isBoolean(entry)) throw mismatch(flag, 'booleanSetting', 'is not a boolean')
  return Flags.boolean({ description, default: entry.default === true, allowNo: entry.schema === BOOLEAN, ...options })
}

/** A whole-number setting of at least 1, without a default or a schema (the `--kube-*` caps, the process's own). */
function integerSetting(flag: string, options: { helpGroup: string }) {
  const { description, entry } = described(flag)
  if (entry.default !== undefined || entry.schema !== undefined)
    throw mismatch(flag, 'integerSetting', 'has a default or a schema')
  return Flags.integer({ description, min: 1, ...options })
}

/** A setting given once per value (`--window A --window B`): its schema is a list. */
function repeatedSetting(flag: string) {
  const { description, entry } = described(flag)
  if (entry.schema?.type !== 'array') throw mismatch(flag, 'repeatedSetting', 'is not a list')
  return Flags.string({ description, multiple: true })
}

/** Flags every command takes. */
export const globalFlags = {
  kubeconfig: stringSetting('kubeconfig', { helpGroup: 'GLOBAL' }),
  context: stringSetting('context', { helpGroup: 'GLOBAL' }),
  'helm-release': defaultedSetting('helm-release', { helpGroup: 'GLOBAL' }),
  'helm-namespace': defaultedSetting('helm-namespace', { helpGroup: 'GLOBAL' }),
  'kube-qps': integerSetting('kube-qps', { helpGroup: 'GLOBAL' }),
  'kube-burst': integerSetting('kube-burst', { helpGroup: 'GLOBAL' }),
  'kube-max-in-flight': integerSetting('kube-max-in-flight', { helpGroup: 'GLOBAL' }),
}

/** Node selection, shared by upgrade, status and the Argo steps. */
export const selectionFlags = {
  'node-selector': stringSetting('node-selector'),
  'node-taint-key': stringSetting('node-taint-key'),
  'node-taint-value': stringSetting('node-taint-value'),
}

export const verificationFlags = {
  'verification-namespace': defaultedSetting('verification-namespace'),
  'verification-timeout': defaultedSetting('verification-timeout'),
}

export const timingFlags = {
  'ready-timeout': defaultedSetting('ready-timeout'),
  'helm-timeout': defaultedSetting('helm-timeout'),
}

/** Drain, shared by upgrade and the Argo plan step (each boolean with its --no- form: `booleanSetting`). */
export const drainFlags = {
  drain: booleanSetting('drain'),
  'drain-timeout': defaultedSetting('drain-timeout'),
  'drain-force': booleanSetting('drain-force'),
  'accept-restart-hazard': booleanSetting('accept-restart-hazard'),
  'drain-delete-emptydir-data': booleanSetting('drain-delete-emptydir-data'),
}

/** `--allow-downgrade`, shared by upgrade and the Argo plan step. */
export const allowDowngradeFlag = booleanSetting('allow-downgrade')

/** The shape of a rollout: wave size, the canary, the soak. Shared by upgrade and the Argo plan step. */
export const rolloutFlags = {
  'batch-size': defaultedSetting('batch-size'),
  canary: stringSetting('canary'),
  soak: stringSetting('soak'),
  'max-unavailable': stringSetting('max-unavailable'),
  'on-workload-disruption': defaultedSetting('on-workload-disruption'),
}

/** `--window`: a maintenance window, repeatable (window.ts); the Argo plan step takes them as one `--windows`. */
export const windowFlag = repeatedSetting('window')

/** The alert gate, shared by upgrade and the Argo plan step (alerts.ts). */
export const alertFlags = {
  'alert-url': stringSetting('alert-url'),
  'alert-match': stringSetting('alert-match'),
  'alert-timeout': defaultedSetting('alert-timeout'),
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
export const poolsFlag = stringSetting('pools')

export const chartFlag = defaultedSetting('chart')

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
