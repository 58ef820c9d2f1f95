/**
 * Node pools: named selections within a run's selected nodes, upgraded one after the other in the
 * order given, each with its own batch, canary and verification pod (a GPU pool verifies with a GPU
 * pod). A pool is finished and verified before the next one starts; fail-fast stops the run in the
 * pool that failed. Pure.
 */
import { parseAllDocuments, stringify } from 'yaml'
import type { NodeView } from '../../ports/cluster.port.js'
import { parseDuration } from '../settings/durations.js'
import { InputError } from '../errors.js'
import { hasTaint, matchesLabelSelector, parseBatchSize, validateSelection, type BatchSpec } from './plan.js'
import type { NodeSelection } from './plan.js'
import type { PoolSpec } from '../policy/policy.js'
import { schemaViolation } from '../policy/schema-check.js'
import { POOLS } from '../settings/value-schemas.js'
import { parseVerificationTemplate, type VerificationTemplate } from '../engine/verification.js'
import { documentValue } from '../settings/yaml-value.js'

export interface Pool {
  name: string
  /** Within the run's selection; empty: every selected node no earlier pool took. */
  selection: NodeSelection
  batch?: BatchSpec
  canary?: number
  /** The pool's own verification pod (and timeout); without it, the run's. */
  verification?: { source: string; origin: string; timeoutMs?: number }
}

/**
 * Parses a `--pools` file: a YAML list of pools, each as the policy's `pools[]` items; undefined for
 * a file that holds no document (comments only: the Argo template's file when it has no pools). An
 * empty file is refused: a truncated or wrong file, not a way to say "no pools". Pure.
 */
export function parsePoolsFile(text: string, origin: string): Pool[] | undefined {
  if (text.trim() === '')
    throw new InputError(
      origin,
      'the file is empty; give a YAML list of pools (name, nodeSelector or nodeTaint, batchSize, canary, verification.pod; docs/policy.md#pools), or leave out --pools',
    )
  const docs = parseAllDocuments(text)
  if (Array.isArray(docs) && (docs.length === 0 || (docs.length === 1 && docs[0]!.contents === null))) return undefined
  if (!Array.isArray(docs) || docs.length !== 1) throw new InputError(origin, 'must be exactly one YAML document')
  const doc = docs[0]!
  if (doc.errors.length > 0) throw new InputError(origin, `not YAML: ${doc.errors[0]!.message.split('\n')[0]}`)
  const value = documentValue(doc, (why) => new InputError(origin, why))
  const found = schemaViolation(value, POOLS, 'pools')
  if (found) throw new InputError(origin, found)
  return poolsOf(value as PoolSpec[], origin)
}

/** The pools a policy (or a `--pools` file) describes, every field checked; errors name `origin` and the field. Pure. */
export function poolsOf(specs: readonly PoolSpec[], origin: string): Pool[] {
  const seen = new Set<string>()
  return specs.map((spec, i) => {
    const field = (name: string) => `${origin}: pools[${i}].${name}`
    if (seen.has(spec.name)) throw new InputError(field('name'), `"${spec.name}" names two pools; give each its own`)
    seen.add(spec.name)
    const selection: NodeSelection = {
      ...(spec.nodeSelector ? { labelSelector: spec.nodeSelector } : {}),
      ...(spec.nodeTaint ? { taintKey: spec.nodeTaint.key } : {}),
      ...(spec.nodeTaint?.value !== undefined ? { taintValue: spec.nodeTaint.value } : {}),
    }
    validateSelection(selection, {
      selector: field('nodeSelector'),
      taintKey: field('nodeTaint.key'),
      taintValue: field('nodeTaint.value'),
    })
    const pod = spec.verification?.pod
    const podOrigin = field('verification.pod')
    if (pod) parseVerificationTemplate(stringify(pod, { lineWidth: 0 }), podOrigin)
    const timeout = spec.verification?.timeout
    return {
      name: spec.name,
      selection,
      ...(spec.batchSize !== undefined ? { batch: parseBatchSize(field('batchSize'), spec.batchSize) } : {}),
      ...(spec.canary !== undefined ? { canary: spec.canary } : {}),
      ...(pod || timeout
        ? {
            verification: {
              source: pod ? stringify(pod, { lineWidth: 0 }) : '',
              origin: podOrigin,
              ...(timeout ? { timeoutMs: parseDuration(field('verification.timeout'), timeout) } : {}),
            },
          }
        : {}),
    }
  })
}

/** Whether a node belongs to a pool's selection (the run's selection already applied). Pure. */
function inPool(node: NodeView, pool: Pool): boolean {
  const { labelSelector, taintKey, taintValue } = pool.selection
  return (
    (!labelSelector || matchesLabelSelector(node.labels, labelSelector)) &&
    (!taintKey || hasTaint(node.taints, taintKey, taintValue))
  )
}

/**
 * The nodes of each pool, in the pools' order and the nodes' order; a node goes to the first pool
 * that selects it. `unpooled` are the nodes no pool selects. Pure.
 */
export function groupByPool<N extends NodeView>(
  nodes: readonly N[],
  pools: readonly Pool[],
): { groups: { pool: Pool; nodes: N[] }[]; unpooled: N[] } {
  const groups = pools.map((pool) => ({ pool, nodes: [] as N[] }))
  const unpooled: N[] = []
  for (const node of nodes) {
    const group = groups.find((g) => inPool(node, g.pool))
    if (group) group.nodes.push(node)
    else unpooled.push(node)
  }
  return { groups, unpooled }
}

/** The run's verification pod when every pool brings its own and the run has none. */
export const NO_RUN_POD = { source: '', origin: 'no run-wide verification pod (every pool has its own)' }

/** Whether every pool brings its own verification pod (then the run needs none of its own). Pure. */
export function everyPoolVerifies(pools: readonly Pool[] | undefined): boolean {
  return pools !== undefined && pools.length > 0 && pools.every((p) => p.verification?.source)
}

/**
 * The verification pod a node of a pool runs: the pool's own (`own`, its `verification`) when it
 * brings one, else the run's `template`; `field` names where it came from, for an error. The one
 * choice the planner, the waves and `rollback NODE` make. Pure.
 */
export function podFor(
  own: { source: string; origin: string } | undefined,
  template: VerificationTemplate | undefined,
): { template: VerificationTemplate | undefined; field: string; own: boolean } {
  return own?.source
    ? { template: parseVerificationTemplate(own.source, own.origin), field: own.origin, own: true }
    : { template, field: '--verification-pod', own: false }
}
