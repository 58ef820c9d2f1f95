import { Flags } from '@oclif/core'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { BaseCommand } from './base-command.js'
import { createDeps } from './deps.js'
import { globalFlags } from './flags.js'
import type { LifecycleDeps, ReleaseRef } from './lifecycle/context.js'
import { InputError } from './lifecycle/errors.js'
import { waveStep, type StepTiming, type WaveStepName } from './lifecycle/services/steps.service.js'
import { PlainProgress } from './ui/plain-progress.js'

export const stepFlags = {
  ...globalFlags,
  holder: Flags.string({
    description: 'Lock holder identity shared by the steps of one workflow (e.g. argo/{{workflow.name}}).',
    required: true,
    env: 'KATA_LCM_HOLDER',
  }),
}

/**
 * A step's pod deleted, or its node drained (SIGTERM; SIGINT by hand): the step exits at once with
 * the signal's code (128 + its number), as if killed. A step is safe to run again from any point,
 * and the template's retry expression retries a step that ended so (143). Carrying on would let the
 * signal reach its helm child too, whose failure would then end the step as an error of its own,
 * with an exit code Argo does not retry.
 */
export function exitOnTermination(): void {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)
    process.once(signal, () => process.exit(code))
}

/** The common part of the `step` commands: plain progress lines (Argo logs), deps, release. */
export abstract class StepCommand extends BaseCommand {
  protected connect(flags: {
    kubeconfig?: string | undefined
    context?: string | undefined
    'helm-release': string
    'helm-namespace': string
  }): { deps: LifecycleDeps; release: ReleaseRef } {
    exitOnTermination()
    const progress = new PlainProgress()
    return {
      deps: createDeps(flags, progress),
      release: { name: flags['helm-release'], namespace: flags['helm-namespace'] },
    }
  }
}

/**
 * The step's nodes (all its waves') per outcome, one file each (`completed`, `rolled-back`,
 * `failed`), where the step's process spent its time (`before-ms`, `handlers-ms`) and its peak
 * resident memory so far (`peak-rss-mb`: getrusage's maxrss, the step's work done).
 */
function writeOutputs(dir: string, nodes: Record<string, string>, timing: StepTiming): void {
  mkdirSync(dir, { recursive: true })
  const statuses = Object.values(nodes)
  for (const outcome of ['completed', 'rolled-back', 'failed'])
    writeFileSync(path.join(dir, outcome), String(statuses.filter((s) => s === outcome).length))
  writeFileSync(path.join(dir, 'before-ms'), String(timing.beforeMs))
  writeFileSync(path.join(dir, 'handlers-ms'), String(timing.handlersMs))
  writeFileSync(path.join(dir, 'peak-rss-mb'), String(Math.round(process.resourceUsage().maxRSS / 1024)))
}

/**
 * The waves a `step wave --pod P --waves-per-pod K` runs: P's K waves, from (P-1)·K+1 (the run's
 * last wave bounds the last pod's). Pure.
 */
export function podWaves(pod: number, wavesPerPod: number): { first: number; through: number } {
  return { first: (pod - 1) * wavesPerPod + 1, through: pod * wavesPerPod }
}

/** `step prepare|upgrade|verify|rollback --wave N`: one phase of one wave, as the Argo template runs it. */
export function waveStepCommand(step: WaveStepName, summary: string) {
  class WaveStepCommand extends StepCommand {
    static override summary = summary
    static override flags = {
      ...stepFlags,
      wave: Flags.integer({
        description: 'Wave number (1-based) from the run record (or --pod with --waves-per-pod).',
        min: 1,
        exactlyOne: ['wave', 'pod'],
      }),
      pod: Flags.integer({
        description:
          "step wave only (the chart's wavesPerPod): run this pod's waves, (pod-1)·K+1 through pod·K of --waves-per-pod K, in order, each after its gates, asked here (windows, pause, alerts); stops at the first wave that fails.",
        min: 1,
        dependsOn: ['waves-per-pod'],
      }),
      'waves-per-pod': Flags.integer({
        description: 'With --pod: the waves each pod of the workflow runs (step plan --waves-per-pod gave the pods).',
        min: 1,
        dependsOn: ['pod'],
      }),
      'outputs-dir': Flags.string({
        description:
          "Write the step's node counts (files completed, rolled-back, failed: one number each, over its waves), also when the step then fails, its time before and in the waves' handlers (before-ms, handlers-ms) and its peak memory (peak-rss-mb): the template's output parameters, for its metrics and the bench.",
      }),
      'wait-turn': Flags.boolean({
        description:
          "step wave only (the chart's overlapWaves): this pod started beside the previous pod's; wait until that pod's waves are over (the run record's wavesDone), then ask the gates here (windows, pause, alerts) before each wave.",
      }),
    }

    async run() {
      const { flags } = await this.parse(WaveStepCommand)
      for (const only of ['wait-turn', 'pod'] as const)
        if (flags[only] && step !== 'wave')
          throw new InputError(
            `--${only}`,
            `only step wave takes it (a pod that starts early or runs several runs whole waves), not step ${step}`,
          )
      const { deps, release } = this.connect(flags)
      const outputs = flags['outputs-dir']
      const waves =
        flags.pod !== undefined
          ? podWaves(flags.pod, flags['waves-per-pod']!)
          : { first: flags.wave!, through: undefined }
      const result = await waveStep(deps, release, waves.first, step, flags.holder, {
        settled: (nodes, timing) => {
          if (outputs) writeOutputs(outputs, nodes, timing)
        },
        overlap: flags['wait-turn'],
        ...(waves.through !== undefined ? { through: waves.through } : {}),
      })
      if (!this.jsonEnabled())
        this.log(
          Object.entries(result.nodes)
            .map(([node, status]) => `${node}: ${status}`)
            .join('\n'),
        )
      return result
    }
  }
  return WaveStepCommand
}
