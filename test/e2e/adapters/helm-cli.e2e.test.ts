/**
 * HelmCli against the real helm binary of the testbed and the packaged kata-deploy fixture chart:
 * release/values/history reads, an upgrade whose values travel through a file, error mapping.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { CoreV1Api } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HelmCli } from '../../../src/adapters/helm-cli.adapter.js'
import { KubeCluster } from '../../../src/adapters/kube-cluster.adapter.js'
import { createKubeConfig } from '../../../src/adapters/kube-config.js'
import { HelmError } from '../../../src/lifecycle/errors.js'
import { e2eCluster, helmBin as laneHelm, loadKubeConfig, REPO_ROOT } from '../harness/cluster.js'

const id = randomBytes(3).toString('hex')
const NS = `adapters-helm-${id}`
const RELEASE = 'kata-deploy'
// Pods of the release's DaemonSet land on no node: this suite is about helm, not scheduling.
const INSTALL_VALUES = { nodeSelector: { 'kata-lcm.test/nowhere': id }, debug: false }
const UPGRADE_VALUES = { nodeSelector: { 'kata-lcm.test/nowhere': id }, debug: true, logLevel: 'debug' }

describe('HelmCli (real helm, fixture chart)', () => {
  const helmBin = laneHelm()
  let kubeconfig: string
  let charts: Record<string, string>
  let helm: HelmCli
  let tmp: string

  beforeAll(async () => {
    kubeconfig = e2eCluster().kubeconfigPath
    const packaged = await execa('bash', [path.join(REPO_ROOT, 'scripts/testbed/package-fixture-charts.sh')], {
      env: { HELM: helmBin },
    })
    charts = Object.fromEntries(
      packaged.stdout
        .split('\n')
        .filter(Boolean)
        .map((tgz) => [/kata-deploy-(.+)\.tgz$/.exec(tgz)?.[1] ?? tgz, tgz]),
    )
    expect(Object.keys(charts)).toEqual(expect.arrayContaining(['3.28.0', '3.32.0', '3.33.0']))
    helm = new HelmCli({ bin: helmBin, kubeconfig })
    tmp = await mkdtemp(path.join(tmpdir(), 'kata-lcm-helm-e2e-'))
    const values = path.join(tmp, 'install.json')
    await writeFile(values, JSON.stringify(INSTALL_VALUES))
    await execa(helmBin, [
      'install',
      RELEASE,
      charts['3.28.0']!,
      '-n',
      NS,
      '--create-namespace',
      '-f',
      values,
      '--kubeconfig',
      kubeconfig,
    ])
  })

  afterAll(async () => {
    await execa(helmBin, ['uninstall', RELEASE, '-n', NS, '--kubeconfig', kubeconfig], { reject: false })
    await loadKubeConfig(kubeconfig)
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: NS })
      .catch(() => undefined)
    if (tmp) await rm(tmp, { recursive: true, force: true })
  })

  it('reports its version', async () => {
    // The lane's helm: helm 3 under KATA_LCM_HELM_LANE=helm3 (scripts/test.sh --matrix), else the test bed's helm 4.
    const major = process.env['KATA_LCM_HELM_LANE'] === 'helm3' ? 3 : 4
    expect((await helm.version()).version).toMatch(new RegExp(`^${major}\\.\\d+\\.\\d+$`))
  })

  it('reads the installed release and its values', async () => {
    const release = await helm.release(RELEASE, NS)
    expect(release).toEqual({
      name: RELEASE,
      namespace: NS,
      revision: 1,
      status: 'deployed',
      chartName: 'kata-deploy',
      chartVersion: '3.28.0',
      appVersion: '3.28.0',
      deployedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/),
    })
    // The same revision reads the same deployment time (a planner checking again relies on it).
    expect((await helm.release(RELEASE, NS))?.deployedAt).toBe(release?.deployedAt)
    expect(await helm.values(RELEASE, NS, { all: false })).toEqual(INSTALL_VALUES)
    const all = await helm.values(RELEASE, NS, { all: true })
    expect(all).toMatchObject({ ...INSTALL_VALUES, image: { reference: 'quay.io/kata-containers/kata-deploy' } })
    expect(all).not.toHaveProperty('deploymentMode') // gated at 3.32.0 in the fixture, like the real chart
  })

  it('answers undefined / [] for a release that does not exist', async () => {
    expect(await helm.release(`missing-${id}`, NS)).toBeUndefined()
    expect(await helm.history(`missing-${id}`, NS)).toEqual([])
  })

  it('shows a chart', async () => {
    expect(await helm.showChart(charts['3.33.0']!)).toEqual({
      name: 'kata-deploy',
      version: '3.33.0',
      appVersion: '3.33.0',
    })
  })

  it('upgrades with exactly the given values (reset, not merged), recorded in history', async () => {
    const before = await helm.release(RELEASE, NS)
    // helm prints a revision's time to the second: upgrade in a later second than the install, so
    // the new revision's time can be told from the old one's (the install may be under a second ago).
    const nextSecond = (Math.floor(Date.parse(before!.deployedAt!) / 1000) + 1) * 1000
    if (Date.now() < nextSecond) await new Promise((resolve) => setTimeout(resolve, nextSecond - Date.now()))
    await helm.upgrade({
      release: RELEASE,
      namespace: NS,
      chart: charts['3.32.0']!,
      version: '3.32.0',
      values: UPGRADE_VALUES,
      timeout: '2m',
    })
    expect(await helm.release(RELEASE, NS)).toMatchObject({
      revision: 2,
      status: 'deployed',
      chartVersion: '3.32.0',
      appVersion: '3.32.0',
    })
    expect((await helm.release(RELEASE, NS))?.deployedAt).not.toBe(before?.deployedAt)
    expect(await helm.values(RELEASE, NS, { all: false })).toEqual(UPGRADE_VALUES)
    expect(await helm.values(RELEASE, NS, { all: false, revision: 1 })).toEqual(INSTALL_VALUES)
    expect(await helm.values(RELEASE, NS, { all: true })).toMatchObject({ deploymentMode: 'daemonset', debug: true })

    const history = await helm.history(RELEASE, NS)
    expect(history.map((r) => [r.revision, r.status, r.chartName, r.chartVersion, r.appVersion])).toEqual([
      [1, 'superseded', 'kata-deploy', '3.28.0', '3.28.0'],
      [2, 'deployed', 'kata-deploy', '3.32.0', '3.32.0'],
    ])
    expect(history[1]?.description).toMatch(/Upgrade complete/i)

    // An upgrade back with empty values drops every user value.
    await helm.upgrade({ release: RELEASE, namespace: NS, chart: charts['3.28.0']!, values: {} })
    expect(await helm.values(RELEASE, NS, { all: false })).toEqual({})
    expect((await helm.release(RELEASE, NS))?.revision).toBe(3)
  })

  it('says so when a release was never deployed', async () => {
    const error = (await helm
      .upgrade({ release: `never-${id}`, namespace: NS, chart: charts['3.28.0']!, values: {} })
      .catch((e: unknown) => e)) as HelmError
    expect(error).toBeInstanceOf(HelmError)
    expect(error.message).toMatch(/has no deployed releases/)
    expect(error.suggestions.join('\n')).toContain(`helm history never-${id} -n ${NS}`)
  })

  it('turns a failed upgrade into a HelmError with the stderr tail', async () => {
    const error = (await helm
      .upgrade({ release: RELEASE, namespace: NS, chart: path.join(tmp, 'no-such-chart.tgz'), values: {} })
      .catch((e: unknown) => e)) as HelmError
    expect(error).toBeInstanceOf(HelmError)
    expect(error.helmExitCode).toBe(1)
    expect(error.stderrTail).toMatch(/no-such-chart\.tgz/)
    expect(error.suggestions.join('\n')).toMatch(/chart or version was not found/)
    expect(error.argv.slice(0, 3)).toEqual([helmBin, 'upgrade', RELEASE])
    expect(error.argv).toEqual(expect.arrayContaining(['--kubeconfig', kubeconfig, '--reset-values']))
    expect((await helm.release(RELEASE, NS))?.revision).toBe(3)
  })

  it("reads the release from helm's storage Secret as `helm get metadata` and `helm status` say it, through every revision", async () => {
    const cluster = new KubeCluster(createKubeConfig({ kubeconfig }))
    // Revision 3 by now (installed, upgraded twice): one install, one first_deployed.
    const stored = await cluster.helmStoredRelease(NS, RELEASE)
    expect(stored?.firstDeployed).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(stored?.firstDeployed).toBe(await helm.firstDeployed(RELEASE, NS))
    const { deployedAt, ...fromHelm } = (await helm.release(RELEASE, NS))!
    const { deployedAt: storedAt, ...fromStorage } = stored!.release
    expect(fromStorage).toEqual(fromHelm)
    expect(fromStorage.revision).toBe(3)
    // helm prints its deployedAt to the second; the storage keeps the instant it wrote.
    expect(Math.floor(Date.parse(storedAt!) / 1000)).toBe(Math.floor(Date.parse(deployedAt!) / 1000))
    expect(await cluster.helmStoredRelease(NS, `missing-${id}`)).toBeUndefined()
  })
})
