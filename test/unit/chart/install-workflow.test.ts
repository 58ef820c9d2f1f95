/** installWorkflow against an in-memory ChartInstaller: input checks first, the values it passes, CRD errors. */
import { describe, expect, it } from 'vitest'
import { HelmError, InputError, PreconditionError } from '../../../src/lifecycle/errors.js'
import { ARGO_CRDS_MISSING, installWorkflow, isMissingArgoCrd, type ChartInstaller, type ChartRelease, type InstallWorkflowRequest } from '../../../src/lifecycle/services/install-workflow.service.js'

const POD = 'apiVersion: v1\nkind: Pod\nmetadata: {name: "${TEST_POD}"}\nspec:\n  restartPolicy: Never\n  nodeSelector: {kubernetes.io/hostname: "${NODE}"}\n  containers: [{name: v, image: busybox}]\n'

/** Records what it was asked; `fail` makes install throw like helm does. */
class RecordingInstaller implements ChartInstaller {
  calls: { op: 'render' | 'install'; chart: ChartRelease }[] = []
  constructor(private readonly fail?: HelmError) {}
  async version() { return { bin: 'helm', printed: 'v4.1.4', version: '4.1.4' } }
  async render(chart: ChartRelease) { this.calls.push({ op: 'render', chart }); return 'kind: WorkflowTemplate\n' }
  async install(chart: ChartRelease) {
    this.calls.push({ op: 'install', chart })
    if (this.fail) throw this.fail
    return 'NOTES:\nargo submit ...\n'
  }
}

function request(over: Partial<InstallWorkflowRequest> = {}): InstallWorkflowRequest {
  return {
    release: 'kata-lifecycle-manager', namespace: 'argo', chartDir: '/pkg/chart',
    verificationPod: { path: '/tmp/pod.yaml', source: POD }, kataDeploy: { release: 'kata-deploy', namespace: 'kube-system' },
    sets: [], dryRun: false, ...over,
  }
}

const MISSING_CRD = 'Error: UPGRADE FAILED: unable to build kubernetes objects from new release manifest: resource mapping not found for name: "kata-lifecycle-manager" namespace: "argo" from "": no matches for kind "WorkflowTemplate" in version "argoproj.io/v1alpha1"\nensure CRDs are installed first'

describe('installWorkflow', () => {
  it('installs with the verification pod as a file and the kata-deploy release as defaults, the operator\'s --set last', async () => {
    const helm = new RecordingInstaller()
    const result = await installWorkflow(helm, request({ sets: ['image.tag=1.0.0', 'defaults.helmNamespace=other'] }))
    expect(result).toEqual({ release: 'kata-lifecycle-manager', namespace: 'argo', dryRun: false, notes: 'NOTES:\nargo submit ...\n' })
    expect(helm.calls).toEqual([{ op: 'install', chart: {
      release: 'kata-lifecycle-manager', namespace: 'argo', chartDir: '/pkg/chart',
      values: {},
      fileValues: { 'defaults.verificationPod': POD },
      sets: ['defaults.helmRelease=kata-deploy', 'defaults.helmNamespace=kube-system', 'image.tag=1.0.0', 'defaults.helmNamespace=other'],
      setStrings: [],
    } }])
  })

  it("the fleet policy's defaults go under every --set (a values file)", async () => {
    const helm = new RecordingInstaller()
    await installWorkflow(helm, request({ defaults: { batchSize: 2, nodeSelector: 'pool=kata' }, sets: ['defaults.batchSize=3'] }))
    expect(helm.calls[0]!.chart).toMatchObject({
      values: { defaults: { batchSize: 2, nodeSelector: 'pool=kata' } },
      sets: ['defaults.helmRelease=kata-deploy', 'defaults.helmNamespace=kube-system', 'defaults.batchSize=3'],
    })
  })

  it('--dry-run renders and never installs', async () => {
    const helm = new RecordingInstaller()
    const result = await installWorkflow(helm, request({ dryRun: true }))
    expect(result.manifests).toBe('kind: WorkflowTemplate\n')
    expect(helm.calls.map((c) => c.op)).toEqual(['render'])
  })

  it('checks the verification pod and --set before calling helm, naming the flag', async () => {
    const helm = new RecordingInstaller()
    await expect(installWorkflow(helm, request({ verificationPod: { path: 'p.yaml', source: 'apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a}]}\n' } }))).rejects.toThrow(/--verification-pod.*\$\{NODE\}/)
    await expect(installWorkflow(helm, request({ sets: ['image.tag'] }))).rejects.toThrow(InputError)
    await expect(installWorkflow(helm, request({ sets: ['image.tag'] }))).rejects.toThrow(/--set: "image.tag" is not key=value/)
    await expect(installWorkflow(helm, request({ namespace: 'Bad_NS', dryRun: true }))).rejects.toThrow(/^--namespace: "Bad_NS" is not a namespace name/)
    await expect(installWorkflow(helm, request({ release: 'Bad_Name!' }))).rejects.toThrow(/^--release-name: "Bad_Name!" is not a helm release name/)
    expect(helm.calls).toEqual([])
  })

  it('turns helm\'s unknown-kind error into one clear precondition', async () => {
    const helm = new RecordingInstaller(new HelmError('helm upgrade failed (exit 1): ...', ['helm', 'upgrade'], 1, MISSING_CRD))
    const error = await installWorkflow(helm, request()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PreconditionError)
    expect((error as PreconditionError).message).toBe(ARGO_CRDS_MISSING)
    expect((error as PreconditionError).exitCode).toBe(2)
  })

  it('lets other helm failures through', async () => {
    const forbidden = new HelmError('helm upgrade failed (exit 1): forbidden', ['helm'], 1, 'Error: secrets is forbidden')
    await expect(installWorkflow(new RecordingInstaller(forbidden), request())).rejects.toBe(forbidden)
  })
})

describe('isMissingArgoCrd', () => {
  it.each([
    [MISSING_CRD, true],
    ['no matches for kind "WorkflowTemplate" in group "argoproj.io"', true],
    ['Error: INSTALLATION FAILED: namespaces "argo" not found', false],
    ['no matches for kind "Foo" in version "example.com/v1"', false],
  ])('%s -> %s', (stderr, expected) => {
    expect(isMissingArgoCrd(stderr)).toBe(expected)
  })
})
