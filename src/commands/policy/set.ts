import { Args } from '@oclif/core'
import { BaseCommand } from '../../base-command.js'
import { createDeps } from '../../deps.js'
import { globalFlags } from '../../flags.js'
import { POLICY_CONFIGMAP } from '../../lifecycle/policy/policy.js'
import { setPolicy } from '../../lifecycle/services/policy.service.js'
import { policyFlags, readFlagFile } from '../../policy-flags.js'

export default class PolicySet extends BaseCommand {
  static override summary =
    "Store the fleet policy in the cluster, where every operator's kata-lcm and the Argo template see it."
  static override description =
    'Validates FILE against the policy schema (kata-lcm policy schema), then creates or replaces the ConfigMap kata-lcm-policy in --policy-namespace, as written (comments kept). A policy that does not validate is refused, naming the field; nothing is written.'
  static override examples = ['<%= config.bin %> policy set ./kata-lcm-policy.yaml']
  static override args = {
    file: Args.string({ description: 'The policy YAML (kata-lcm init writes a starter).', required: true }),
  }
  static override flags = { ...globalFlags, 'policy-namespace': policyFlags['policy-namespace'] }

  async run() {
    const { args, flags } = await this.parse(PolicySet)
    const text = await readFlagFile('FILE', args.file)
    const namespace = flags['policy-namespace']
    const policy = await setPolicy(createDeps(flags, { emit: () => undefined }).cluster, namespace, text, args.file)
    if (!this.jsonEnabled()) this.log(`policy stored in ConfigMap ${namespace}/${POLICY_CONFIGMAP}`)
    return { namespace, name: POLICY_CONFIGMAP, policy }
  }
}
