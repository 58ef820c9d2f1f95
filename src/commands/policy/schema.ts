import { BaseCommand } from '../../base-command.js'
import { POLICY_SCHEMA } from '../../lifecycle/policy/policy-schema.js'

export default class PolicySchema extends BaseCommand {
  static override summary = "Print the policy's JSON schema (for editors: yaml-language-server's $schema)."
  static override examples = ['<%= config.bin %> policy schema > kata-lcm-policy.schema.json']
  static override enableJsonFlag = false

  async run() {
    // Parsed only to refuse what it does not take: a flag it ignored would pass for one it honours.
    await this.parse(PolicySchema)
    this.log(JSON.stringify(POLICY_SCHEMA, null, 2))
  }
}
