/**
 * `kubectl kata-lcm`: package.json installs the kubectl-kata_lcm executable beside kata-lcm, and the
 * krew manifest (plugins/krew/kata-lcm.yaml, not published) parses as krew's Plugin and names that
 * executable, at the package's version.
 */
import { access, constants, readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { ROOT } from '../commands/cli.js'

interface Pkg {
  version: string
  bin: Record<string, string>
  files: string[]
}

interface KrewPlugin {
  apiVersion: string
  kind: string
  metadata: { name: string }
  spec: {
    version: string
    shortDescription: string
    platforms: {
      selector: { matchExpressions: { key: string; operator: string; values: string[] }[] }
      uri: string
      sha256: string
      files: { from: string; to: string }[]
      bin: string
    }[]
  }
}

const pkg = async () => JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as Pkg
const manifest = async () =>
  YAML.parse(await readFile(path.join(ROOT, 'plugins/krew/kata-lcm.yaml'), 'utf8')) as KrewPlugin

describe('kubectl kata-lcm', () => {
  it('the package installs an executable kubectl-kata_lcm beside kata-lcm, and packs it', async () => {
    const { bin, files } = await pkg()
    expect(bin['kata-lcm']).toBe('./bin/run.js')
    const plugin = bin['kubectl-kata_lcm']
    expect(plugin).toBe('./bin/kubectl-kata_lcm.js')
    await access(path.join(ROOT, plugin!), constants.X_OK)
    expect(files).toContain(plugin!.replace(/^\.\//, ''))
  })

  it("the krew manifest parses as krew's Plugin, named for kubectl kata-lcm, at the package's version", async () => {
    const m = await manifest()
    expect(m).toMatchObject({ apiVersion: 'krew.googlecontainertools.github.com/v1alpha2', kind: 'Plugin' })
    // krew links kubectl-<name, dashes as underscores>: the executable the package installs.
    expect(`kubectl-${m.metadata.name.replaceAll('-', '_')}`).toBe('kubectl-kata_lcm')
    expect(m.spec.version).toBe(`v${(await pkg()).version}`)
    expect(m.spec.shortDescription.length).toBeLessThanOrEqual(60)
  })

  it("each platform's bin is the package's kubectl-kata_lcm executable, where its files put the package", async () => {
    const { bin } = await pkg()
    const m = await manifest()
    expect(m.spec.platforms.length).toBeGreaterThan(0)
    for (const platform of m.spec.platforms) {
      expect(platform.sha256).toMatch(/^[0-9a-f]{64}$/)
      expect(platform.uri).toMatch(/^https:\/\/.+\.tar\.gz$/)
      expect(platform.selector.matchExpressions).toContainEqual(expect.objectContaining({ key: 'os' }))
      // The archive holds the installed package (npm install --prefix): its files go to the plugin's root.
      expect(platform.files).toEqual([{ from: 'lib/node_modules/kata-lcm/*', to: '.' }])
      expect(`./${platform.bin}`).toBe(bin['kubectl-kata_lcm'])
    }
  })
})
