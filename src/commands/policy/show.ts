import { BaseCommand } from '../../base-command.js'
import { createDeps } from '../../deps.js'
import { globalFlags } from '../../flags.js'
import { policyYaml } from '../../lifecycle/policy/policy.js'
import { findPolicy } from '../../lifecycle/services/policy.service.js'
import { policyFlags, readFlagFile } from '../../policy-flags.js'

export default class PolicyShow extends BaseCommand {
  static override summary = 'Print the fleet policy in effect and where it came from.'
  static override description =
    "--policy FILE when given, else the cluster's ConfigMap kata-lcm-policy in --policy-namespace (absent: no policy). A ConfigMap that cannot be read (403, 5xx, unreachable) or no usable kubeconfig is an error (exit 2 for a missing right or kubeconfig, 7 for the cluster). Read-only."
  static override examples = ['<%= config.bin %> policy show', '<%= config.bin %> policy show --json']
  static override flags = {
    ...globalFlags,
    policy: policyFlags.policy,
    'policy-namespace': policyFlags['policy-namespace'],
  }

  async run() {
    const { flags } = await this.parse(PolicyShow)
    const file = flags.policy ? { path: flags.policy, text: await readFlagFile('--policy', flags.policy) } : undefined
    const found = await findPolicy(() => createDeps(flags, { emit: () => undefined }).cluster, {
      ...(file ? { file } : {}),
      namespace: flags['policy-namespace'],
    })
    // A cluster that cannot be asked is an error here too, never "no policy".
    if (found.noCluster !== undefined) throw found.noCluster
    if (!this.jsonEnabled()) {
      if (!found.source) this.log(`no policy: looked at ${found.looked.join(', ')}`)
      else this.log(`# ${found.source.origin}\n${policyYaml(found.source.policy).trimEnd()}`)
    }
    return { origin: found.source?.origin ?? null, looked: found.looked, policy: found.source?.policy ?? null }
  }
}
