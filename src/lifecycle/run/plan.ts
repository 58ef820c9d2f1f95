import type { NodeView, Taint } from '../../ports/cluster.port.js'
import { InputError } from '../errors.js'

/** Which nodes a command acts on: a label selector, a taint, or both (ANDed). */
export interface NodeSelection {
  /** kubectl label-selector syntax; evaluated by the API server. */
  labelSelector?: string
  taintKey?: string
  taintValue?: string
}

/** Validates a selection before anything is read. Pure. */
export function validateSelection(
  selection: NodeSelection,
  fields = { selector: '--node-selector', taintKey: '--node-taint-key', taintValue: '--node-taint-value' },
): void {
  if (selection.taintValue !== undefined && selection.taintValue !== '' && !selection.taintKey) {
    throw new InputError(
      fields.taintValue,
      'needs --node-taint-key: a taint value alone selects nothing; give the key too (e.g. --node-taint-key kata-lifecycle-manager --node-taint-value pending)',
    )
  }
  if (selection.labelSelector !== undefined) validateLabelSelector(selection.labelSelector, fields.selector)
  if (selection.taintKey !== undefined && !QUALIFIED_NAME.test(selection.taintKey)) {
    throw new InputError(
      fields.taintKey,
      `"${selection.taintKey}" is not a valid taint key; use a qualified name like example.com/maintenance`,
    )
  }
}

const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/

/**
 * Checks kubectl label-selector syntax (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`)
 * so a typo is a clear input error rather than an API server 400 after the run began.
 */
export function validateLabelSelector(selector: string, field = '--node-selector'): LabelRequirement[] {
  const parsed: LabelRequirement[] = []
  for (const raw of splitRequirements(selector)) {
    const requirement = raw.trim()
    if (requirement === '')
      throw new InputError(
        field,
        `"${selector}" has an empty requirement; use kubectl syntax like node-pool=kata,zone in (a,b)`,
      )
    const set = /^(!?)([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(requirement)
    const eq = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s,()]*)$/.exec(requirement)
    const exists = /^(!?)([^\s!=()]+)$/.exec(requirement)
    let key: string | undefined
    let values: string[] = []
    let op: LabelRequirement['op'] = 'exists'
    if (set && set[1] === '') {
      key = set[2]
      values = (set[4] ?? '').split(',').map((v) => v.trim())
      op = set[3] as 'in' | 'notin'
    } else if (eq) {
      key = eq[1]
      values = [eq[3] ?? '']
      op = eq[2] === '!=' ? 'notin' : 'in'
    } else if (exists) {
      key = exists[2]
      op = exists[1] === '!' ? 'absent' : 'exists'
    }
    const tooLong =
      values.find((v) => v.length > 63) ??
      (key !== undefined && (key.split('/').at(-1)!.length > 63 || key.length > 317) ? key : undefined)
    if (tooLong !== undefined) {
      throw new InputError(
        field,
        `"${tooLong.length > 70 ? `${tooLong.slice(0, 60)}...` : tooLong}" is ${tooLong.length} characters; label values and label names are at most 63 (a name's DNS prefix at most 253)`,
      )
    }
    if (key === undefined || !QUALIFIED_NAME.test(key) || values.some((v) => !LABEL_VALUE.test(v))) {
      throw new InputError(
        field,
        `"${requirement}" is not a valid label requirement; use kubectl syntax like node-pool=kata, env!=prod, zone in (a,b) or !excluded`,
      )
    }
    parsed.push({ key, op, values })
  }
  return parsed
}

/** One requirement of a label selector: `a=b` and `a in (b)` are `in`, `a!=b` is `notin`. */
export interface LabelRequirement {
  key: string
  op: 'in' | 'notin' | 'exists' | 'absent'
  values: string[]
}

/** Whether `labels` satisfy the selector, as the API server evaluates it (`notin` holds for a missing label). Pure. */
export function matchesLabelSelector(labels: Readonly<Record<string, string>>, selector: string): boolean {
  return validateLabelSelector(selector).every(({ key, op, values }) => {
    const value = labels[key]
    switch (op) {
      case 'in':
        return value !== undefined && values.includes(value)
      case 'notin':
        return value === undefined || !values.includes(value)
      case 'exists':
        return value !== undefined
      case 'absent':
        return value === undefined
    }
  })
}

function splitRequirements(selector: string): string[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of selector) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(current)
      current = ''
    } else current += ch
  }
  parts.push(current)
  return parts
}

/** Whether the node carries the selection's taint (key, and value when given). Pure. */
export function hasTaint(taints: readonly Taint[], key: string, value?: string): boolean {
  return taints.some((t) => t.key === key && (value === undefined || value === '' || (t.value ?? '') === value))
}

/**
 * The nodes a run acts on, in a deterministic order (by name), from nodes already filtered by the
 * label selector on the server. Pure.
 */
export function selectNodes(nodes: readonly NodeView[], selection: NodeSelection): NodeView[] {
  const picked = selection.taintKey
    ? nodes.filter((n) => hasTaint(n.taints, selection.taintKey!, selection.taintValue))
    : [...nodes]
  return picked.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * Splits an ordered list into waves of at most `batchSize`, the first of at most `canary` when given
 * (a canary smaller than the batch). Pure; batch size 1 = strict node by node.
 */
export function planWaves<T>(items: readonly T[], batchSize: number, canary?: number): T[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError('--batch-size', `must be a whole number >= 1, got ${batchSize}`)
  if (canary !== undefined && (!Number.isInteger(canary) || canary < 1))
    throw new InputError('--canary', `must be a whole number >= 1, got ${canary}`)
  const waves: T[][] = []
  const first = canary ?? batchSize
  if (items.length > 0) waves.push(items.slice(0, first))
  for (let i = first; i < items.length; i += batchSize) waves.push(items.slice(i, i + batchSize))
  return waves
}

/** `--batch-size`: a number of nodes (`2`) or a percentage of the selected nodes (`25%`). */
export type BatchSpec = { nodes: number } | { percent: number }

/** Parses `--batch-size` (or the policy's batchSize): `N` >= 1 or `P%` with 1 <= P <= 100. Pure. */
export function parseBatchSize(field: string, value: string | number): BatchSpec {
  const text = String(value).trim()
  const percent = /^(\d{1,3})%$/.exec(text)
  if (percent && Number(percent[1]) >= 1 && Number(percent[1]) <= 100) return { percent: Number(percent[1]) }
  if (/^\d+$/.test(text) && Number(text) >= 1) return { nodes: Number(text) }
  throw new InputError(
    field,
    `"${text}" is not a batch size; use a whole number of nodes (2) or a percentage of the selected nodes (25%)`,
  )
}

/** The number of nodes per wave a spec means over `selected` nodes: a percentage rounds up, at least 1. Pure. */
export function batchNodes(spec: BatchSpec, selected: number): number {
  return 'nodes' in spec ? spec.nodes : Math.max(1, Math.ceil((selected * spec.percent) / 100))
}

/** The label that keeps a node out of every run: `kata-lcm.katacontainers.io/skip=true`. */
export const SKIP_LABEL = 'kata-lcm.katacontainers.io/skip'

/** Whether an operator keeps the node out of runs (the skip label). Pure. */
export function isSkipped(node: Pick<NodeView, 'labels'>): boolean {
  return node.labels[SKIP_LABEL] === 'true'
}

/** Human text of a selection, for messages. */
export function describeSelection(selection: NodeSelection): string {
  const parts: string[] = []
  if (selection.labelSelector) parts.push(`label selector "${selection.labelSelector}"`)
  if (selection.taintKey)
    parts.push(`taint ${selection.taintKey}${selection.taintValue ? `=${selection.taintValue}` : ''}`)
  return parts.length === 0 ? 'all nodes' : parts.join(' and ')
}
