import { Flags } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import { InputError } from '../../lifecycle/errors.js'
import { validateRequest } from '../../lifecycle/checks/prerequisites.js'
import { planStep } from '../../lifecycle/services/steps.service.js'
import { parseWindowList } from '../../lifecycle/gates/window.js'
import { NO_RUN_POD, parsePoolsFile } from '../../lifecycle/run/pools.js'
import {
  allowDowngradeFlag,
  chartFlag,
  defaultedSetting,
  requiredSetting,
  stringSetting,
  checkDrainOptions,
  drainFlags,
  rolloutFlags,
  alertFlags,
  selectionFlags,
  timingFlags,
  upgradeRequestFrom,
  verificationFlags,
} from '../../flags.js'
import { StepCommand, stepFlags } from '../../step-command.js'

export default class StepPlan extends StepCommand {
  static override summary = 'First step: check prerequisites, take the lock, record the run and its waves.'
  static override description =
    'Prints {"runId","waves","pods","nodes","skipped"} as JSON on stdout (counts: the workflow loops over 1..pods, the pods of --waves-per-pod waves each; one wave each by default).'

  static override flags = {
    ...stepFlags,
    'target-version': requiredSetting('target-version'),
    chart: chartFlag,
    'previous-chart': stringSetting('previous-chart'),
    ...selectionFlags,
    ...rolloutFlags,
    ...alertFlags,
    'deployment-mode': defaultedSetting('deployment-mode'),
    ...drainFlags,
    'verification-pod': Flags.string({
      description: 'Pod YAML file for verification.',
      exactlyOne: ['verification-pod', 'verification-pod-b64'],
    }),
    'verification-pod-b64': Flags.string({
      description:
        'The verification Pod YAML, base64-encoded (the workflow parameter); empty only when every pool has its own.',
    }),
    'pools-b64': Flags.string({
      description:
        'The node pools (a --pools file of kata-lcm upgrade), base64-encoded (the workflow parameter); empty: none.',
    }),
    ...verificationFlags,
    ...timingFlags,
    'allow-downgrade': allowDowngradeFlag,
    windows: Flags.string({
      description:
        'Maintenance windows, each as kata-lcm upgrade --window takes it, separated by ";" (the workflow parameter); empty: any time. Each wave waits for one (step window, then a suspend).',
      default: '',
    }),
    'waves-per-pod': Flags.integer({
      description:
        "The waves each of the workflow's wave pods runs (the chart's wavesPerPod): the output's pods is the waves in pods of this many.",
      min: 1,
      default: 1,
    }),
    'policy-in-effect': Flags.string({
      description:
        "The fleet policy install-workflow rendered into the template's defaults (the chart's defaults.policy); the run's first line and output name it.",
      default: '',
    }),
  }

  async run() {
    const { flags } = await this.parse(StepPlan)
    // drain-force and drain-delete-emptydir-data come from the template's defaults as the policy's do:
    // they wait for a run that drains (drain-enabled), as the policy's drain.force does on the CLI.
    checkDrainOptions(flags, {
      'drain-force': 'the drain-force parameter',
      'drain-delete-emptydir-data': 'the drain-delete-emptydir-data parameter',
    })
    const source =
      flags['verification-pod-b64'] !== undefined
        ? Buffer.from(flags['verification-pod-b64'], 'base64').toString('utf8')
        : await readFile(flags['verification-pod']!, 'utf8').catch(() => {
            throw new InputError('--verification-pod', `cannot read ${flags['verification-pod']}`)
          })
    const poolsText = Buffer.from(flags['pools-b64'] ?? '', 'base64').toString('utf8')
    const pools = poolsText.trim() ? parsePoolsFile(poolsText, 'pools parameter') : undefined
    const windows = parseWindowList('--windows', flags.windows)
    const rendered = flags['policy-in-effect'] || 'none recorded: not rendered by kata-lcm install-workflow'
    const request = {
      ...upgradeRequestFrom(
        flags,
        source.trim() || !pools
          ? { source, origin: flags['verification-pod'] ?? 'verification-pod parameter' }
          : NO_RUN_POD,
        {},
        pools,
      ),
      ...(windows.length > 0 ? { windows } : {}),
      // The step reads no policy: the template's defaults carry the one install-workflow read.
      policy: { name: `the workflow's parameters over the template's defaults (their policy: ${rendered})` },
    }
    validateRequest(request)
    const { deps } = this.connect(flags)
    const planned = await planStep(deps, request, this.newRunId(), flags.holder)
    const result = { ...planned, pods: Math.ceil(planned.waves / flags['waves-per-pod']) }
    // stdout carries only the JSON, for the workflow's output parameter.
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return result
  }
}
