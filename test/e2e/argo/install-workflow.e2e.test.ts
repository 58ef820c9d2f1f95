/**
 * `kata-lcm install-workflow` on the kwok cluster: without Argo's CRDs it refuses with one clear
 * line and writes nothing; with Argo's full CRDs (server-side applied) it installs the chart and
 * the API server accepts the WorkflowTemplate as rendered (nothing pruned by the CRD's schema).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import { parseAllDocuments } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuditLog, describeEvents } from '../harness/audit.js'
import { e2eCluster, loadKubeConfig } from '../harness/cluster.js'
import {
  applyArgoCrds,
  deleteArgoCrds,
  ensureCliBuilt,
  helm,
  kataLcm,
  kubectl,
  removeCli,
  VERIFICATION_POD,
} from './argo-harness.js'

const id = randomBytes(3).toString('hex')
const ARGO_NS = `argo-install-${id}`
const RELEASE = `klm-${id}`
/** Where the workflow's kata-deploy release would be: the chart puts Roles there, so it must exist. */
const KATA_NS = `kd-install-${id}`

describe('kata-lcm install-workflow', () => {
  let kubeconfig: string
  let kc: KubeConfig
  let audit: AuditLog
  let dir: string
  let pod: string

  beforeAll(async () => {
    const cluster = e2eCluster()
    kubeconfig = cluster.kubeconfigPath
    kc = loadKubeConfig(kubeconfig)
    audit = new AuditLog(cluster.auditLogPath)
    await ensureCliBuilt()
    dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-argo-install-'))
    pod = path.join(dir, 'verification-pod.yaml')
    await writeFile(pod, VERIFICATION_POD)
    for (const name of [ARGO_NS, KATA_NS])
      await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } })
  })

  afterAll(async () => {
    await helm(kubeconfig, ['uninstall', RELEASE, '-n', ARGO_NS])
    for (const name of [ARGO_NS, KATA_NS])
      await kc
        .makeApiClient(CoreV1Api)
        .deleteNamespace({ name })
        .catch(() => undefined)
    if (dir) await rm(dir, { recursive: true, force: true })
    await removeCli()
  })

  it('refuses without the Argo CRDs, in one line, and writes nothing', async () => {
    // Another Argo test may have applied them: this one needs a cluster without Argo.
    await deleteArgoCrds(kubeconfig)
    const t0 = new Date()
    const r = await kataLcm(
      ['install-workflow', '--verification-pod', pod, '--namespace', ARGO_NS, '--release-name', RELEASE],
      kubeconfig,
    )
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe(
      'Error: Argo Workflows CRDs are missing (workflowtemplates.argoproj.io): install Argo Workflows first',
    )
    await audit.barrier(kc)
    const writes = await audit.writesSince(t0, { userAgentPrefix: 'Helm' })
    expect(writes, describeEvents(writes)).toHaveLength(0)
    expect((await helm(kubeconfig, ['list', '-n', ARGO_NS, '-q'])).stdout.trim()).toBe('')
  })

  it('prints the rendered manifests with --dry-run and writes nothing', async () => {
    const t0 = new Date()
    const r = await kataLcm(
      ['install-workflow', '--verification-pod', pod, '--namespace', ARGO_NS, '--release-name', RELEASE, '--dry-run'],
      kubeconfig,
    )
    expect(r.code, r.stderr).toBe(0)
    const kinds = parseAllDocuments(r.stdout)
      .map((d) => (d.toJS() as { kind?: string } | null)?.kind)
      .filter(Boolean)
    expect(kinds).toContain('WorkflowTemplate')
    expect(kinds).toContain('ServiceAccount')
    await audit.barrier(kc)
    expect(await audit.writesSince(t0, { userAgentPrefix: 'Helm' })).toHaveLength(0)
  })

  it('installs the chart once the CRDs exist; the API server stores the WorkflowTemplate exactly as rendered', async () => {
    await applyArgoCrds(kubeconfig)
    const args = [
      'install-workflow',
      '--verification-pod',
      pod,
      '--namespace',
      ARGO_NS,
      '--release-name',
      RELEASE,
      '--helm-namespace',
      KATA_NS,
      '--set',
      'defaults.batchSize=2',
    ]
    const r = await kataLcm(args, kubeconfig)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(
      `argo submit -n ${ARGO_NS} --from workflowtemplate/kata-lifecycle-manager -p target-version=`,
    )
    expect(r.stdout).toContain('argo watch')
    expect(r.stdout).toContain('--entrypoint rollback-node')

    const stored = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: ARGO_NS,
      plural: 'workflowtemplates',
      name: 'kata-lifecycle-manager',
    })) as { spec: { arguments: { parameters: { name: string; value?: string }[] } } }
    const rendered = (await kataLcm([...args, '--dry-run'], kubeconfig)).stdout
    const template = parseAllDocuments(rendered)
      .map((d) => d.toJS() as { kind?: string; spec?: unknown })
      .find((o) => o?.kind === 'WorkflowTemplate')!
    expect(
      isDeepStrictEqual(stored.spec, template.spec),
      'the stored spec differs from the rendered one (pruned by the CRD schema?)',
    ).toBe(true)
    const params = Object.fromEntries(stored.spec.arguments.parameters.map((p) => [p.name, p.value]))
    expect(params).toMatchObject({ 'helm-namespace': KATA_NS, 'batch-size': '2' })

    // Installing again is an upgrade of the same release: safe to rerun.
    const again = await kataLcm(args, kubeconfig)
    expect(again.code, again.stderr).toBe(0)
    expect((await kubectl(kubeconfig, ['get', 'workflowtemplates', '-n', ARGO_NS, '-o', 'name'])).stdout.trim()).toBe(
      'workflowtemplate.argoproj.io/kata-lifecycle-manager',
    )
  })
})
