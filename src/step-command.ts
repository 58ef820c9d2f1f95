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
    const progress = new PlainProgress((line) => process.stderr.write(`${line}\n`))
    return {
      deps: createDeps(flags, progress),
      release: { name: flags['helm-release'], namespace: flags['helm-namespace'] },
    }
  }
}

/**
 * The wave's nodes per outcome, one file each (`completed`, `rolled-back`, `failed`), where the
 * step's process spent its time (`before-ms`, `handlers-ms`) and its peak resident memory so far
 * (`peak-rss-mb`: getrusage's maxrss, the step's work done).
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

/** `step prepare|upgrade|verify|rollback --wave N`: one phase of one wave, as the Argo template runs it. */
export function waveStepCommand(step: WaveStepName, summary: string) {
  class WaveStepCommand extends StepCommand {
    static override summary = summary
    static override flags = {
      ...stepFlags,
      wave: Flags.integer({ description: 'Wave number (1-based) from the run record.', required: true, min: 1 }),
      'outputs-dir': Flags.string({
        description:
          "Write the wave's node counts after the step (files completed, rolled-back, failed: one number each), also when the step then fails, its time before and in the wave's handlers (before-ms, handlers-ms) and its peak memory (peak-rss-mb): the template's output parameters, for its metrics and the bench.",
      }),
      'wait-turn': Flags.boolean({
        description:
          "step wave only (the chart's overlapWaves): this pod started beside the previous wave's; wait until that wave's step is over (the run record's wavesDone), then ask the gates here (windows, pause, alerts) before the wave.",
      }),
    }

    async run() {
      const { flags } = await this.parse(WaveStepCommand)
      const { deps, release } = this.connect(flags)
      if (flags['wait-turn'] && step !== 'wave')
        throw new InputError(
          '--wait-turn',
          `only step wave takes it (overlapping waves run one pod per wave), not step ${step}`,
        )
      const outputs = flags['outputs-dir']
      const result = await waveStep(
        deps,
        release,
        flags.wave,
        step,
        flags.holder,
        (nodes, timing) => {
          if (outputs) writeOutputs(outputs, nodes, timing)
        },
        flags['wait-turn'],
      )
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
