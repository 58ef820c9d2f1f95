import type { NodeView } from '../ports/cluster.port.js'
import { describeError } from './errors.js'
import { drainNode } from './drain.js'
import type { Phase } from './events.js'
import type { NodeOutcomes, RunContext } from './modes/strategy.js'
import { Annotation, isInFlight, readStatus, type NodeStatus } from './node-state.js'
import { releaseCordon, transition, type TransitionExtras } from './node-ops.js'
import type { NodeResult, VerificationEvidence } from './report.js'
import { verifyNode, type VerificationSettings } from './verify-node.js'

export interface WaveSettings {
  runId: string
  drain: boolean
  drainTimeoutMs: number
  verification: VerificationSettings
}

/**
 * One wave's nodes as the cluster says they are. Every phase below reads and writes it, and records
 * its outcome on the nodes themselves (a failed node moves to `rolling-back` with its last error at
 * once), so the phases can run in one process (the CLI) or one per Argo step.
 */
export interface WaveState {
  ctx: RunContext
  settings: WaveSettings
  wave: number
  nodes: Map<string, NodeView>
  results: Map<string, NodeResult>
}

export function newWaveState(ctx: RunContext, settings: WaveSettings, wave: number, nodes: readonly NodeView[]): WaveState {
  return { ctx, settings, wave, nodes: new Map(nodes.map((n) => [n.name, n])), results: new Map() }
}

/** Nodes of the wave that have not failed. */
export function aliveNodes(state: WaveState): string[] {
  return [...state.nodes.values()].filter((n) => readStatus(n.annotations) !== 'rolling-back').map((n) => n.name)
}

/** Nodes of the wave waiting to be rolled back. */
export function failedNodes(state: WaveState): string[] {
  return [...state.nodes.values()].filter((n) => readStatus(n.annotations) === 'rolling-back').map((n) => n.name)
}

async function write(state: WaveState, node: string, to: NodeStatus, extras: TransitionExtras): Promise<void> {
  state.nodes.set(node, await transition(state.ctx.deps, state.nodes.get(node)!, to, extras))
}

/** Records a node's failure on the node: `rolling-back` with the reason; the rollback phase reverts it. */
async function fail(state: WaveState, node: string, reason: string, evidence?: VerificationEvidence): Promise<void> {
  state.results.set(node, { name: node, status: 'rolling-back', error: reason, ...(evidence ? { evidence } : {}) })
  await write(state, node, 'rolling-back', { message: `failed: ${reason}`, warning: true, annotations: { [Annotation.lastError]: oneLine(reason) } })
}

/** Runs one phase over the alive nodes: events around it; a node whose work throws is failed. Never throws. */
async function phase(state: WaveState, name: Phase, names: string[], work: (node: string) => Promise<void>): Promise<void> {
  if (names.length === 0) return
  state.ctx.deps.events.emit({ type: 'phase-start', wave: state.wave, phase: name, nodes: names })
  const settled = await Promise.allSettled(names.map(work))
  const failures: { node: string; reason: string }[] = []
  for (const [i, s] of settled.entries()) {
    if (s.status === 'fulfilled') continue
    const node = names[i]!
    const reason = describeError(s.reason)
    failures.push({ node, reason })
    if (readStatus(state.nodes.get(node)!.annotations) !== 'rolling-back') await fail(state, node, reason).catch(() => undefined)
  }
  state.ctx.deps.events.emit({ type: 'phase-end', wave: state.wave, phase: name, nodes: names, failures })
}

/**
 * prepare + cordon: records the run, the node's prior schedulability and its previous version,
 * then cordons it. A node an interrupted run left mid-flight keeps what that run recorded.
 */
export async function preparePhase(state: WaveState): Promise<void> {
  const { ctx, settings } = state
  await phase(state, 'prepare', aliveNodes(state), async (name) => {
    const node = state.nodes.get(name)!
    const resumed = isInFlight(readStatus(node.annotations)) && node.annotations[Annotation.wasUnschedulable] !== undefined
    const previous = readStatus(node.annotations) === 'completed' && node.annotations[Annotation.currentVersion] ? node.annotations[Annotation.currentVersion]! : ctx.previousVersion
    await write(state, name, 'preparing', {
      message: `kata-lcm run ${settings.runId}: preparing ${ctx.previousVersion} -> ${ctx.targetVersion}${resumed ? ' (resuming an interrupted run)' : ''}`,
      annotations: {
        [Annotation.runId]: settings.runId,
        [Annotation.targetVersion]: ctx.targetVersion,
        [Annotation.lastError]: null,
        // An interrupted run already recorded these; reading them now would see its own cordon.
        ...(resumed ? {} : { [Annotation.wasUnschedulable]: String(node.unschedulable), [Annotation.previousVersion]: previous }),
      },
    })
  })
  await phase(state, 'cordon', aliveNodes(state), async (name) => {
    const ours = state.nodes.get(name)!.annotations[Annotation.wasUnschedulable] === 'false'
    await write(state, name, 'cordoned', {
      message: ours ? 'cordoned by kata-lcm' : 'was already unschedulable; kata-lcm will leave it cordoned',
      unschedulable: true,
      annotations: { [Annotation.cordonedByUs]: ours ? 'true' : null },
    })
  })
}

/** Optional drain through the Eviction API. */
export async function drainPhase(state: WaveState): Promise<void> {
  if (!state.settings.drain) return
  await phase(state, 'drain', aliveNodes(state), async (name) => {
    await write(state, name, 'draining', { message: 'evicting workloads' })
    await drainNode(state.ctx.deps, name, state.settings.drainTimeoutMs, state.ctx.signal)
  })
}

/** upgrading: the strategy rolls the new kata-deploy onto the wave and judges each node. */
export async function upgradePhase(state: WaveState): Promise<void> {
  const { ctx } = state
  const names = aliveNodes(state)
  if (names.length === 0) return
  ctx.deps.events.emit({ type: 'phase-start', wave: state.wave, phase: 'upgrade', nodes: names })
  await Promise.allSettled(names.map((name) => write(state, name, 'upgrading', { message: `rolling kata-deploy ${ctx.targetVersion} onto the node` }).catch((error: unknown) => fail(state, name, describeError(error)))))
  const ready = aliveNodes(state)
  let outcomes: NodeOutcomes = new Map()
  if (ready.length > 0) {
    try {
      outcomes = await ctx.strategy.upgradeWave(ctx, ready)
    } catch (error) {
      outcomes = new Map(ready.map((n) => [n, { ok: false, reason: describeError(error) }]))
    }
  }
  const failures = [...outcomes].flatMap(([node, o]) => (o.ok ? [] : [{ node, reason: o.reason }]))
  await Promise.all(failures.map((f) => fail(state, f.node, f.reason).catch(() => undefined)))
  ctx.deps.events.emit({ type: 'phase-end', wave: state.wave, phase: 'upgrade', nodes: names, failures })
}

/**
 * verifying, then completed: each node's verification pod runs concurrently; a node that passes is
 * put back in service (uncordoned only if kata-lcm cordoned it) and annotated with the new version.
 */
export async function verifyPhase(state: WaveState): Promise<void> {
  const { ctx, settings } = state
  const passed: string[] = []
  await phase(state, 'verify', aliveNodes(state), async (name) => {
    await write(state, name, 'verifying', { message: `running the verification pod in ${settings.verification.namespace}` })
    const outcome = await verifyNode(ctx, settings.verification, name, true)
    if (!outcome.ok) return fail(state, name, outcome.reason, outcome.evidence)
    passed.push(name)
  })
  await phase(state, 'complete', passed.filter((n) => aliveNodes(state).includes(n)), async (name) => {
    const cordon = releaseCordon(state.nodes.get(name)!)
    await write(state, name, 'completed', {
      message: `verified on ${ctx.targetVersion}`,
      ...cordon,
      annotations: { ...cordon.annotations, [Annotation.currentVersion]: ctx.targetVersion, [Annotation.lastError]: null },
    })
    state.results.set(name, { name, status: 'completed', version: ctx.targetVersion })
  })
}

/**
 * Reverts the wave's failed nodes with the strategy, then puts each back in service (if kata-lcm
 * cordoned it) as `rolled-back`, or marks it `failed` and leaves it cordoned when the revert failed.
 */
export async function rollbackPhase(state: WaveState): Promise<{ rolledBack: string[]; failed: string[] }> {
  const { ctx } = state
  const names = failedNodes(state)
  if (names.length === 0) return { rolledBack: [], failed: [] }
  ctx.deps.events.emit({ type: 'phase-start', wave: state.wave, phase: 'rollback', nodes: names })
  let outcomes: NodeOutcomes
  try {
    outcomes = await ctx.strategy.revertNodes(ctx, names)
  } catch (error) {
    outcomes = new Map(names.map((n) => [n, { ok: false, reason: describeError(error) }]))
  }
  const rolledBack: string[] = []
  const failed: { node: string; reason: string }[] = []
  for (const name of names) {
    const node = state.nodes.get(name)!
    const cause = state.results.get(name)?.error ?? node.annotations[Annotation.lastError] ?? 'failed'
    const evidence = state.results.get(name)?.evidence
    const outcome = outcomes.get(name) ?? { ok: false, reason: 'the strategy returned no result' }
    const previous = node.annotations[Annotation.previousVersion] ?? ctx.previousVersion
    if (outcome.ok) {
      const cordon = releaseCordon(node)
      await write(state, name, 'rolled-back', { message: `back on ${previous} after: ${cause}`, warning: true, ...cordon, annotations: { ...cordon.annotations, [Annotation.currentVersion]: previous } })
      rolledBack.push(name)
      state.results.set(name, { name, status: 'rolled-back', version: previous, error: cause, ...(evidence ? { evidence } : {}) })
    } else {
      const reason = `${cause}; rollback failed: ${outcome.reason}`
      await write(state, name, 'failed', { message: reason, warning: true, annotations: { [Annotation.lastError]: oneLine(reason) } })
      failed.push({ node: name, reason })
      state.results.set(name, { name, status: 'failed', error: reason, ...(evidence ? { evidence } : {}) })
    }
  }
  ctx.deps.events.emit({ type: 'phase-end', wave: state.wave, phase: 'rollback', nodes: names, failures: failed })
  return { rolledBack, failed: failed.map((f) => f.node) }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 500)
}
