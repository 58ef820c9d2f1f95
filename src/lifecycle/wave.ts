import type { NodeView } from '../ports/cluster.port.js'
import { describeError } from './errors.js'
import { drainNode } from './drain.js'
import type { Phase } from './events.js'
import type { NodeOutcomes, RunContext } from './modes/strategy.js'
import { Annotation, readStatus, isInFlight } from './node-state.js'
import { releaseCordon, transition } from './node-ops.js'
import type { NodeResult } from './report.js'
import { verifyNode, type VerificationSettings } from './verify-node.js'

export interface WaveSettings {
  runId: string
  drain: boolean
  drainTimeoutMs: number
  verification: VerificationSettings
}

export interface WaveResult {
  passed: string[]
  rolledBack: string[]
  /** Nodes whose rollback failed: cordoned, annotated `failed`, manual action needed. */
  failed: string[]
  results: NodeResult[]
}

type Failure = { node: string; reason: string; reverted: boolean }

/**
 * One wave, as a unit: prepare → cordon → (drain) → upgrade → verify → complete; nodes that fail
 * are rolled back, the others complete. Every step writes the node's state first, so a rerun after a
 * crash resumes from what the cluster says.
 */
export async function runWave(ctx: RunContext, settings: WaveSettings, wave: number, waveNodes: NodeView[]): Promise<WaveResult> {
  const nodes = new Map(waveNodes.map((n) => [n.name, n]))
  const failures: Failure[] = []
  const results = new Map<string, NodeResult>()
  const alive = () => [...nodes.keys()].filter((name) => !failures.some((f) => f.node === name))

  /** Runs one phase over `names`: events around it, failures recorded, never throws. */
  const phase = async (name: Phase, names: string[], work: (names: string[]) => Promise<Failure[]>) => {
    if (names.length === 0) return
    ctx.deps.events.emit({ type: 'phase-start', wave, phase: name, nodes: names })
    const failed = await work(names)
    failures.push(...failed)
    ctx.deps.events.emit({ type: 'phase-end', wave, phase: name, nodes: names, failures: failed })
  }
  /** Per-node work, concurrently; a node whose work throws becomes a failure. */
  const eachNode = (fn: (node: string) => Promise<void>, reverted: boolean) => async (names: string[]): Promise<Failure[]> => {
    const settled = await Promise.allSettled(names.map(fn))
    return settled.flatMap((s, i) => (s.status === 'rejected' ? [{ node: names[i]!, reason: describeError(s.reason), reverted }] : []))
  }
  const write = async (node: string, to: Parameters<typeof transition>[2], extras: Parameters<typeof transition>[3]) => {
    nodes.set(node, await transition(ctx.deps, nodes.get(node)!, to, extras))
  }

  await phase('prepare', alive(), eachNode(async (name) => {
    const node = nodes.get(name)!
    const resumed = isInFlight(readStatus(node.annotations)) && node.annotations[Annotation.wasUnschedulable] !== undefined
    await write(name, 'preparing', {
      message: `kata-lcm run ${settings.runId}: preparing upgrade ${ctx.previousVersion} -> ${ctx.targetVersion}${resumed ? ' (resuming an interrupted run)' : ''}`,
      annotations: {
        [Annotation.runId]: settings.runId,
        [Annotation.targetVersion]: ctx.targetVersion,
        [Annotation.lastError]: null,
        // An interrupted run already recorded these; re-reading them now would see our own cordon.
        ...(resumed ? {} : {
          [Annotation.wasUnschedulable]: String(node.unschedulable),
          [Annotation.previousVersion]: node.annotations[Annotation.currentVersion] && readStatus(node.annotations) === 'completed' ? node.annotations[Annotation.currentVersion]! : ctx.previousVersion,
        }),
      },
    })
  }, false))

  await phase('cordon', alive(), eachNode(async (name) => {
    const ours = nodes.get(name)!.annotations[Annotation.wasUnschedulable] === 'false'
    await write(name, 'cordoned', {
      message: ours ? 'cordoned by kata-lcm' : 'already unschedulable before kata-lcm; it will stay cordoned afterwards',
      unschedulable: true,
      annotations: { [Annotation.cordonedByUs]: ours ? 'true' : null },
    })
  }, false))

  if (settings.drain) {
    await phase('drain', alive(), eachNode(async (name) => {
      await write(name, 'draining', { message: 'evicting workloads' })
      await drainNode(ctx.deps, name, settings.drainTimeoutMs, ctx.signal)
    }, false))
  }

  await phase('upgrade', alive(), async (names) => {
    const unannotated = await eachNode((name) => write(name, 'upgrading', { message: `rolling kata-deploy ${ctx.targetVersion} onto the node` }), false)(names)
    const ready = names.filter((n) => !unannotated.some((f) => f.node === n))
    if (ready.length === 0) return unannotated
    let outcomes: NodeOutcomes
    try {
      outcomes = await ctx.strategy.upgradeWave(ctx, ready)
    } catch (error) {
      outcomes = new Map(ready.map((n) => [n, { ok: false, reason: describeError(error) }]))
    }
    return [...unannotated, ...[...outcomes].flatMap(([node, o]) => (o.ok ? [] : [{ node, reason: o.reason, reverted: true }]))]
  })

  await phase('verify', alive(), eachNode(async (name) => {
    await write(name, 'verifying', { message: `running verification pod in ${settings.verification.namespace}` })
    const outcome = await verifyNode(ctx, settings.verification, name, true)
    if (!outcome.ok) {
      results.set(name, { name, status: 'rolling-back', error: outcome.reason, ...(outcome.evidence ? { evidence: outcome.evidence } : {}) })
      throw new Error(outcome.reason)
    }
  }, true))

  const passed = alive()
  await phase('complete', passed, eachNode(async (name) => {
    await write(name, 'completed', {
      message: `verified on ${ctx.targetVersion}`,
      ...mergeCordon(nodes.get(name)!, { [Annotation.currentVersion]: ctx.targetVersion, [Annotation.lastError]: null }),
    })
    results.set(name, { name, status: 'completed', version: ctx.targetVersion })
  }, false))

  const { rolledBack, failed } = await rollBack(ctx, wave, nodes, failures, results, write)
  return { passed: passed.filter((n) => !failures.some((f) => f.node === n)), rolledBack, failed, results: waveNodes.map((n) => results.get(n.name)!) }
}

function mergeCordon(node: NodeView, annotations: Record<string, string | null>) {
  const release = releaseCordon(node)
  return { ...release, annotations: { ...release.annotations, ...annotations } }
}

/** Reverts failed nodes (those the upgrade touched), then puts them back in service or marks them failed. */
async function rollBack(
  ctx: RunContext, wave: number, nodes: Map<string, NodeView>, failures: Failure[], results: Map<string, NodeResult>,
  write: (node: string, to: Parameters<typeof transition>[2], extras: Parameters<typeof transition>[3]) => Promise<void>,
): Promise<{ rolledBack: string[]; failed: string[] }> {
  if (failures.length === 0) return { rolledBack: [], failed: [] }
  const names = failures.map((f) => f.node)
  ctx.deps.events.emit({ type: 'phase-start', wave, phase: 'rollback', nodes: names })
  const reasonOf = (node: string) => failures.find((f) => f.node === node)!.reason
  for (const f of failures) await write(f.node, 'rolling-back', { message: `rolling back: ${f.reason}`, warning: true, annotations: { [Annotation.lastError]: oneLine(f.reason) } }).catch(() => undefined)
  const toRevert = failures.filter((f) => f.reverted).map((f) => f.node)
  let outcomes: NodeOutcomes = new Map()
  if (toRevert.length > 0) {
    try {
      outcomes = await ctx.strategy.revertNodes(ctx, toRevert)
    } catch (error) {
      outcomes = new Map(toRevert.map((n) => [n, { ok: false, reason: describeError(error) }]))
    }
  }
  const rolledBack: string[] = []
  const failed: string[] = []
  for (const node of names) {
    const outcome = outcomes.get(node) ?? { ok: true }
    const previous = nodes.get(node)!.annotations[Annotation.previousVersion] ?? ctx.previousVersion
    const evidence = results.get(node)?.evidence
    if (outcome.ok) {
      await write(node, 'rolled-back', { message: `back on ${previous}: ${reasonOf(node)}`, warning: true, ...mergeCordon(nodes.get(node)!, { [Annotation.currentVersion]: previous }) })
      rolledBack.push(node)
      results.set(node, { name: node, status: 'rolled-back', version: previous, error: reasonOf(node), ...(evidence ? { evidence } : {}) })
    } else {
      const reason = `${reasonOf(node)}; rollback failed: ${outcome.reason}`
      await write(node, 'failed', { message: reason, warning: true, annotations: { [Annotation.lastError]: oneLine(reason) } }).catch(() => undefined)
      failed.push(node)
      results.set(node, { name: node, status: 'failed', error: reason, ...(evidence ? { evidence } : {}) })
    }
  }
  ctx.deps.events.emit({ type: 'phase-end', wave, phase: 'rollback', nodes: names, failures: failed.map((node) => ({ node, reason: results.get(node)!.error! })) })
  return { rolledBack, failed }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 500)
}
