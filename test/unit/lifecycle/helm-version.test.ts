/** helm's version is checked before any write: below MINIMUM_HELM every command that runs helm refuses (exit 2). */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { ExitCode, KataLcmError, PreconditionError } from '../../../src/lifecycle/errors.js'
import { helmVersionProblem, MINIMUM_HELM, SUPPORTED_HELM } from '../../../src/lifecycle/checks/helm-version.js'
import { installWorkflow } from '../../../src/lifecycle/services/install-workflow.service.js'
import { rollbackNode } from '../../../src/lifecycle/services/rollback.service.js'
import { nodeStatus } from '../../../src/lifecycle/services/status.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import type { ChartInstaller } from '../../../src/ports/chart.port.js'
import type { HelmVersion } from '../../../src/ports/helm.port.js'
import { RELEASE, scenario, VERIFICATION_POD, type Scenario } from '../../fakes/scenario.js'

const OLD: HelmVersion = { bin: '/usr/local/bin/helm', printed: 'v3.10.0+gce66412', version: '3.10.0' }

async function refused(run: Promise<unknown>): Promise<KataLcmError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(PreconditionError)
  const refusal = error as PreconditionError
  expect(refusal.exitCode).toBe(ExitCode.BadInput)
  expect(refusal.message).toContain('helm "/usr/local/bin/helm" is v3.10.0+gce66412, older than 3.14.0')
  expect(refusal.suggestions[0]).toMatch(/^install helm v3\.14\+ or v4 /)
  return refusal
}

function nothingWritten(s: Scenario): void {
  expect(s.cluster.writes).toEqual([])
  expect(s.helm.upgrades).toEqual([])
}

describe('helm older than kata-lcm supports', () => {
  it('upgrade refuses before any write, naming the binary, its version and the minimum', async () => {
    const s = await scenario()
    s.helm.helmVersion = OLD
    await refused(upgrade(s.deps, s.upgradeRequest(), 'run-1'))
    nothingWritten(s)
  })

  it('upgrade --dry-run refuses too (its plan would name commands this helm lacks)', async () => {
    const s = await scenario()
    s.helm.helmVersion = OLD
    await refused(upgrade(s.deps, s.upgradeRequest({ dryRun: true }), 'run-1'))
    nothingWritten(s)
  })

  it('rollback NODE refuses before any write', async () => {
    const s = await scenario({ nodes: 2 })
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('success')
    const writes = s.cluster.writes.length
    const upgrades = s.helm.upgrades.length
    s.helm.helmVersion = OLD
    await refused(rollbackNode(s.deps, s.rollbackRequest('node-1'), 'rb-1'))
    expect(s.cluster.writes.length).toBe(writes)
    expect(s.helm.upgrades.length).toBe(upgrades)
  })

  it('install-workflow refuses before helm renders or installs anything', async () => {
    const calls: string[] = []
    const installer: ChartInstaller = {
      version: async () => OLD,
      render: async () => (calls.push('render'), ''),
      install: async () => (calls.push('install'), ''),
    }
    await refused(
      installWorkflow(installer, {
        release: 'kata-lifecycle-manager',
        namespace: 'argo',
        chartDir: '/pkg/chart',
        verificationPod: { path: 'pod.yaml', source: VERIFICATION_POD },
        kataDeploy: { release: 'kata-deploy', namespace: 'kube-system' },
        sets: [],
        dryRun: false,
      }),
    )
    expect(calls).toEqual([])
  })

  it('status still shows the nodes and names the version on the release line (read-only)', async () => {
    const s = await scenario({ nodes: 2 })
    s.helm.helmVersion = OLD
    const report = await nodeStatus(s.deps, RELEASE, {})
    expect(report.release.helmProblem).toMatch(
      /^helm "\/usr\/local\/bin\/helm" is v3\.10\.0\+gce66412, older than 3\.14\.0/,
    )
    expect(report.release.chartVersion).toBeUndefined()
    expect(report.rows.map((r) => r.node)).toEqual(['node-1', 'node-2'])
  })

  it('a helm at the minimum or later goes ahead', async () => {
    for (const ok of [
      { bin: 'helm', printed: 'v3.14.0', version: '3.14.0' },
      { bin: 'helm', printed: 'v3.14.0-rc.1+gabc', version: '3.14.0-rc.1' },
      { bin: 'helm', printed: 'v4.1.4', version: '4.1.4' },
    ]) {
      const s = await scenario()
      s.helm.helmVersion = ok
      expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('success')
    }
  })
})

describe('helmVersionProblem', () => {
  it.each([
    ['3.13.3', /older than 3\.14\.0/],
    ['2.16.1', /older than 3\.14\.0/],
    [undefined, /reports "garbage", in which kata-lcm finds no version; it needs helm 3\.14\.0 or later/],
  ])('%s is refused', (version, reason) => {
    expect(helmVersionProblem({ bin: 'helm', printed: version ? `v${version}` : 'garbage', version })).toMatch(reason)
  })

  it.each(['3.14.0', '3.21.4', '4.0.0', '4.3.2'])('%s will do', (version) => {
    expect(helmVersionProblem({ bin: 'helm', printed: `v${version}`, version })).toBeUndefined()
  })

  it('README states the minimum the code checks', async () => {
    expect(MINIMUM_HELM).toBe('3.14.0')
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8')
    expect(readme).toContain(`Needs Node.js >= 22, ${SUPPORTED_HELM.replace(/^helm /, 'helm (')})`)
  })
})
