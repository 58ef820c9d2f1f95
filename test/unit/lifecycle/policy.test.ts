import { describe, expect, it } from 'vitest'
import { InputError } from '../../../src/lifecycle/errors.js'
import { parsePolicy, policyFlags, withPolicy, chartDefaults } from '../../../src/lifecycle/policy.js'
import {
  findPolicy,
  kataFamilies,
  missingVerificationPod,
  starterFiles,
} from '../../../src/lifecycle/policy.service.js'
import { parseVerificationTemplate } from '../../../src/lifecycle/verification.js'
import { FakeCluster } from '../../fakes/fake-cluster.js'
import { FakeClock } from '../../fakes/fake-clock.js'

const POLICY = `apiVersion: kata-lcm.katacontainers.io/v1alpha1
kind: Policy
release: { name: kd, namespace: kata-system }
nodeSelector: pool=kata
batchSize: 2
timeouts: { ready: 2m }
verification:
  pod:
    apiVersion: v1
    kind: Pod
    metadata: { name: "\${TEST_POD}" }
    spec: { containers: [{ name: v, image: busybox }] }
`

describe('the fleet policy', () => {
  it('parses, and fills the flags the command line did not give', () => {
    const policy = parsePolicy(POLICY, 'policy file p.yaml')
    expect(policyFlags(policy)).toEqual({
      'helm-release': 'kd',
      'helm-namespace': 'kata-system',
      'node-selector': 'pool=kata',
      'batch-size': 2,
      'ready-timeout': '2m',
    })
    const { flags, origins } = withPolicy(
      { 'batch-size': 5, 'ready-timeout': '5m', 'helm-release': 'kata-deploy' },
      {
        given: new Set(['batch-size']),
        defined: new Set(['batch-size', 'ready-timeout', 'helm-release', 'node-selector']),
      },
      { policy, origin: 'policy file p.yaml' },
    )
    // The flag given wins; the policy fills the rest (node-selector too, though unset and default-less).
    expect(flags).toEqual({
      'batch-size': 5,
      'ready-timeout': '2m',
      'helm-release': 'kd',
      'node-selector': 'pool=kata',
    })
    expect(origins['ready-timeout']).toBe('policy file p.yaml: timeouts.ready')
    expect(chartDefaults(policy)).toEqual({
      helmRelease: 'kd',
      helmNamespace: 'kata-system',
      nodeSelector: 'pool=kata',
      batchSize: 2,
    })
  })

  it("renders the pools and the cap into the template's defaults (pools as the plan step's --pools YAML)", () => {
    const policy = parsePolicy(
      'apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\nmaxUnavailable: 3\npools:\n  - name: gpu\n    nodeSelector: pool=gpu\n  - name: rest\n',
      'p',
    )
    expect(chartDefaults(policy)).toEqual({
      maxUnavailable: 3,
      pools: '- name: gpu\n  nodeSelector: pool=gpu\n- name: rest\n',
    })
  })

  it.each([
    ['batchSize: two', /policy file p.yaml: batchSize: "two" does not match/],
    ['batchSize: 150%', /policy file p.yaml: batchSize: "150%" does not match/],
    ['canary: 0', /canary: must be at least 1, not 0/],
    ['batchSize: 0', /batchSize: must be at least 1, not 0/],
    ['deploymentMode: helm', /deploymentMode: "helm" is not one of "auto", "daemonset", "job"/],
    ['timeouts: { ready: soon }', /timeouts.ready: "soon" does not match/],
    ['drain: { enable: true }', /drain.enable: unknown field; known: enabled, timeout, force, deleteEmptyDirData/],
    ['nodeTaint: { value: x }', /nodeTaint.key: is required/],
    [
      'verification: { pod: { apiVersion: v1, kind: Deployment, spec: {} } }',
      /verification.pod.kind: "Deployment" is not one of "Pod"/,
    ],
    ['release: { name: Kata_Deploy }', /release.name: "Kata_Deploy" does not match/],
    ['pools: []', /pools: must hold at least 1 item/],
    ['pools: [{ nodeSelector: a=b }]', /pools\[0\].name: is required/],
    ['pools: [{ name: gpu, canary: 0 }]', /pools\[0\].canary: must be at least 1, not 0/],
    ['maxUnavailable: 0', /maxUnavailable: must be at least 1, not 0/],
  ])('refuses %s, naming the field', (line, message) => {
    const text = `apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\n${line}\n`
    expect(() => parsePolicy(text, 'policy file p.yaml')).toThrow(message)
  })

  it('refuses an alias bomb as bad input naming the source, not a crash', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (const [i, k] of ['b', 'c', 'd', 'e', 'f'].entries())
      bomb.push(`${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`)
    const text = `apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\nx: {${bomb.join(', ')}}\n`
    expect(() => parsePolicy(text, 'policy file p.yaml')).toThrow(InputError)
    expect(() => parsePolicy(text, 'policy file p.yaml')).toThrow(/^policy file p.yaml: its aliases expand too far/)
  })

  it('refuses a document that is not one policy', () => {
    expect(() => parsePolicy('kind: Policy\n', 'p')).toThrow(/p: apiVersion: is required/)
    expect(() => parsePolicy('a: 1\n---\nb: 2\n', 'p')).toThrow(/exactly one YAML document/)
    expect(() => parsePolicy('[1, 2]', 'p')).toThrow(/must be a mapping, not array/)
  })

  it('looks at --policy FILE, else the cluster; a cluster that cannot answer is noted, not fatal', async () => {
    const cluster = new FakeCluster(new FakeClock())
    expect((await findPolicy(() => cluster, { namespace: 'kube-system' })).looked).toEqual([
      'ConfigMap kube-system/kata-lcm-policy (none)',
    ])
    cluster.policies.set('kube-system', POLICY)
    const found = await findPolicy(() => cluster, { namespace: 'kube-system' })
    expect(found.source?.origin).toBe('policy ConfigMap kube-system/kata-lcm-policy')
    const broken = await findPolicy(
      () => {
        throw new Error('no kubeconfig')
      },
      { namespace: 'kube-system' },
    )
    expect(broken.looked).toEqual(['ConfigMap kube-system/kata-lcm-policy (could not be read: no kubeconfig)'])
    expect(missingVerificationPod(broken.looked).message).toMatch(
      /^--verification-pod: no verification pod: looked at the flag \(not given\), ConfigMap kube-system\/kata-lcm-policy \(could not be read: no kubeconfig\)/,
    )
  })

  it('init: one verification pod per Kata RuntimeClass family, a policy that validates and verifies with the first', async () => {
    const cluster = new FakeCluster(new FakeClock())
    cluster.runtimeClasses.push(
      { name: 'kata-qemu-tdx', handler: 'kata-qemu-tdx' },
      { name: 'kata-qemu', handler: 'kata-qemu' },
      { name: 'kata-clh', handler: 'kata-clh' },
      { name: 'runc', handler: 'runc' },
    )
    expect(kataFamilies(cluster.runtimeClasses)).toEqual([
      { family: 'clh', name: 'kata-clh' },
      { family: 'qemu', name: 'kata-qemu' },
    ])
    const starter = await starterFiles(cluster, { name: 'kata-deploy', namespace: 'kube-system' })
    expect(starter.pods.map((p) => p.file)).toEqual(['verify-kata-clh.yaml', 'verify-kata-qemu.yaml'])
    for (const pod of starter.pods) expect(() => parseVerificationTemplate(pod.text, pod.file)).not.toThrow()
    const policy = parsePolicy(starter.policy, 'starter')
    expect((policy.verification?.pod?.spec as { runtimeClassName: string }).runtimeClassName).toBe('kata-clh')
    await expect(starterFiles(new FakeCluster(new FakeClock()), { name: 'kd', namespace: 'ns' })).rejects.toThrow(
      /no Kata RuntimeClass/,
    )
  })
})
