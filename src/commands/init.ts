import { Flags } from '@oclif/core'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { globalFlags } from '../flags.js'
import { InputError } from '../lifecycle/errors.js'
import { checkReleaseRef } from '../lifecycle/checks/names.js'
import { starterFiles } from '../lifecycle/services/policy.service.js'

export default class Init extends BaseCommand {
  static override summary =
    "Write a starter fleet policy and verification pods built from the cluster's Kata RuntimeClasses."
  static override description =
    'Reads the RuntimeClasses (read-only) and writes, in --output-dir: kata-lcm-policy.yaml (the release, a node selector, batch size, timeouts, and a verification pod for the first Kata RuntimeClass family) and verify-<runtimeclass>.yaml, one per family found (kata-qemu, kata-clh, ...). Edit them, then: kata-lcm policy set kata-lcm-policy.yaml. Refuses to overwrite a file without --force.'
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init --output-dir ./fleet --force']
  static override flags = {
    ...globalFlags,
    'output-dir': Flags.string({ description: 'Where to write the files.', default: '.' }),
    force: Flags.boolean({ description: 'Overwrite files that exist.', default: false }),
  }

  async run() {
    const { flags } = await this.parse(Init)
    const release = { name: flags['helm-release'], namespace: flags['helm-namespace'] }
    checkReleaseRef(release)
    const starter = await starterFiles(createDeps(flags, { emit: () => undefined }).cluster, release)
    const files = [
      { path: join(flags['output-dir'], 'kata-lcm-policy.yaml'), text: starter.policy },
      ...starter.pods.map((p) => ({ path: join(flags['output-dir'], p.file), text: p.text })),
    ]
    const existing = files.filter((f) => existsSync(f.path)).map((f) => f.path)
    if (existing.length > 0 && !flags.force)
      throw new InputError('--force', `${existing.join(', ')} exist; pass --force to overwrite them`)
    await mkdir(flags['output-dir'], { recursive: true })
    for (const f of files) await writeFile(f.path, f.text)
    if (!this.jsonEnabled()) {
      for (const f of files) this.log(`wrote ${f.path}`)
      this.log(`next: review them, then kata-lcm policy set ${files[0]!.path}`)
    }
    return { files: files.map((f) => f.path), runtimeClasses: starter.pods.map((p) => p.runtimeClass) }
  }
}
